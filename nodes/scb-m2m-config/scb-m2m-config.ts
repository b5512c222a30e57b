/**
 * scb-m2m-config: the client certificate and where it reports. Decodes the certificate once
 * at deploy, shows its problems on every node that uses it, owns the one M2MClient of the
 * deployment; its editor's endpoints are in routes.ts, the journal's in deliveries.ts.
 */
import type { M2MClient, M2MError } from '../../lib';
import { isM2MError } from '../../lib';
import type { NodeAPI, NodeDef, Node, NodeStatus } from '../shared/red';
import {
  CONFIG_TYPE,
  CONFIG_SETTINGS,
  type CertificateCredentials,
  type ConfigSettings,
  type ConnectionSettings,
  type CertificateReport,
  type ScbM2mConfigNode,
  certificateAnswer,
  connectionSettings,
  createClient,
  errorReport,
  inspectCertificate,
} from './model';
import { journalFor, working, errorOf } from '../shared/journal';
import { registerDeliveriesRoute } from './deliveries';
import { registerConfigRoutes } from './routes';
import { NetworkError, ValidationError } from '../../lib';

interface ConfigDef extends NodeDef, Partial<Record<keyof ConnectionSettings, unknown>> {
  organisationsnummer?: string;
  undersokning?: string;
}

type ConfigNodeSelf = ScbM2mConfigNode & { organisationsnummer: string; undersokning: string; environment: string };

/** Status keys of the certificate problems a user can fix, by error code. */
const CERTIFICATE_STATUS: { readonly [Code in M2MError['code']]?: string } = {
  WRONG_PASSPHRASE: 'wrong-passphrase',
  EXPIRED: 'expired',
  NOT_YET_VALID: 'not-yet-valid',
  FILE_UNREADABLE: 'unreadable',
  NOT_PKCS12: 'not-pfx',
  NO_CERTIFICATE_CONFIGURED: 'no-certificate',
  SERVER_CERTIFICATE_UNTRUSTED: 'server-untrusted',
};

export = function (RED: NodeAPI): void {
  function statusFor(err: unknown): NodeStatus {
    const fail = (key: string, subs?: Record<string, string | number>): NodeStatus => ({
      fill: 'red',
      shape: 'ring',
      text: RED._(`scb-m2m-config.status.${key}`, subs),
    });
    if (!isM2MError(err)) return fail('failed');
    switch (err.kind) {
      case 'certificate':
        return fail(CERTIFICATE_STATUS[err.code] ?? 'certificate');
      case 'validation':
        return fail('invalid', { field: err.field ?? '' });
      case 'authorisation':
        return fail('unauthorised');
      case 'server':
        return fail('server', { statusCode: err.statusCode ?? '' });
      default:
        return fail(err.kind);
    }
  }

  /**
   * Deliveries and polls of nodes that no longer exist (removed in a deploy): they cannot be
   * resumed, so each is said in the log and settled in the journal, never left silent.
   */
  async function settleOrphans(configId: string, warn: (text: string) => void): Promise<void> {
    const journal = await journalFor(RED, configId);
    const gone = (id: string | undefined) => id !== undefined && !RED.nodes.getNode(id);
    for (const r of journal.list()) {
      if (working.has(r.id)) continue;
      const file = r.target?.filnamn ?? r.uploadId ?? r.id;
      const target = r.target
        ? [r.target.organisationsnummer, r.target.undersokning, r.target.referensperiod, r.target.filformat]
            .filter(Boolean)
            .join(', ')
        : '';
      if (['queued', 'sending', 'interrupted', 'closing'].includes(r.state) && gone(r.node?.id)) {
        const closing = r.state === 'closing';
        const err = closing
          ? new NetworkError(RED._('scb-m2m-config.journal.orphan-uncertain', { file, target }), {
              code: 'DELIVERY_UNCERTAIN',
              retryable: false,
            })
          : new ValidationError(RED._('scb-m2m-config.journal.orphan-upload', { file, target }), {
              code: 'NODE_REMOVED',
              field: 'node',
            });
        warn(err.message);
        await journal.update(r.id, { state: closing ? 'uncertain' : 'failed', error: errorOf(err) });
        if (r.source?.kind === 'memory') await journal.dropSpool(r.id);
      }
      if (r.poll && gone(r.poll.nodeId)) {
        const text = RED._('scb-m2m-config.journal.orphan-poll', { file, uploadId: r.uploadId ?? '' });
        warn(text);
        await journal.update(r.id, { poll: undefined, note: text });
      }
    }
  }

  function ScbM2mConfigNode(this: ConfigNodeSelf, def: ConfigDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    node.organisationsnummer = (def.organisationsnummer ?? '').trim();
    node.undersokning = (def.undersokning ?? '').trim();
    const settings = connectionSettings(def);
    node.environment = settings.environment;
    const users = new Set<Node>();
    // The certificate's standing as a status for the flow nodes; none while it is fine.
    let certificateStatus: NodeStatus | undefined;

    const inspected = inspectCertificate(RED, settings, node.credentials ?? {});
    const client: Promise<M2MClient> = inspected.then(({ certificate }) =>
      // The client's lines per request (each segment, each poll) are debug detail; the nodes log the info lines (nodes/shared/log.ts).
      createClient(RED, settings, certificate, (level, message) =>
        level === 'warn' ? node.warn(message) : node.debug(message),
      ),
    );
    const show = (status: NodeStatus) => {
      certificateStatus = status;
      for (const user of users) user.status(status);
    };
    inspected.then(
      ({ warning, certificate }) => {
        if (!warning) return;
        node.warn(warning);
        show({
          fill: 'yellow',
          shape: 'ring',
          text: RED._('scb-m2m-config.status.expires-in', { days: certificate.info.daysLeft }),
        });
      },
      (err: unknown) => {
        node.error(errorReport(err).message);
        show(statusFor(err));
      },
    );
    client.catch((err: unknown) => {
      // A certificate problem was reported above; what else can fail here is the CA file or the settings.
      if (!isM2MError(err) || err.kind !== 'certificate') {
        node.error(errorReport(err).message);
        show(statusFor(err));
      }
    });

    node.acquireClient = () => client;
    node.certificateReport = async (): Promise<CertificateReport> => {
      try {
        return certificateAnswer(await inspected);
      } catch (err) {
        return { ok: false, error: errorReport(err) };
      }
    };
    node.register = (user) => {
      users.add(user);
      if (certificateStatus) user.status(certificateStatus);
    };
    node.deregister = (user) => users.delete(user);
    node.statusFor = statusFor;

    const onStarted = () => {
      settleOrphans(node.id, (text) => node.warn(text)).catch((err: unknown) => node.warn(errorOf(err).message));
    };
    RED.events.on('flows:started', onStarted);

    node.on('close', (_removed: boolean, done: () => void) => {
      RED.events.removeListener('flows:started', onStarted);
      users.clear();
      client
        .then(
          (c) => c.close(),
          () => undefined,
        )
        .then(
          () => done(),
          () => done(),
        );
    });
  }

  RED.nodes.registerType<ConfigNodeSelf, ConfigDef, ConfigSettings, CertificateCredentials>(
    CONFIG_TYPE,
    ScbM2mConfigNode,
    {
      credentials: { pfx: { type: 'password' }, passphrase: { type: 'password' } },
      settings: CONFIG_SETTINGS,
    },
  );

  registerDeliveriesRoute(RED);
  registerConfigRoutes(RED);
};
