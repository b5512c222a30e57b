/**
 * scb-m2m-config: the client certificate and where it reports. Decodes the certificate once
 * at deploy, shows its problems on every node that uses it, owns the one M2MClient of the
 * deployment and serves the editor's certificate and test-connection endpoints.
 */
import type { ErrorCode, M2MClient, M2MError } from '../../lib';
import { daysLeft, isM2MError } from '../../lib';
import type { NodeAPI, NodeDef, Node, NodeStatus, AdminRequest, AdminResponse } from '../shared/red';
import {
  CONFIG_TYPE,
  type CertificateCredentials,
  type CertificateReport,
  type ConnectionSettings,
  type ScbM2mConfigNode,
  certificateWarning,
  connectionSettings,
  createClient,
  credentialsFor,
  errorReport,
  findConfigNode,
  loadConfiguredCertificate,
} from '../shared/config';
import { journalFor, working, errorOf } from '../shared/journal';
import { registerDeliveriesRoute } from './deliveries';
import { NetworkError, ValidationError } from '../../lib';

interface ConfigDef extends NodeDef {
  organisationsnummer?: string;
  undersokning?: string;
}

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

function bodyOf(req: AdminRequest): Record<string, unknown> {
  return req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export = function (RED: NodeAPI): void {
  function statusFor(err: unknown): NodeStatus {
    const fail = (key: string, subs?: Record<string, unknown>): NodeStatus => ({
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

  /** Decodes and checks the certificate; everything the dialog and a deploy need to know. */
  async function inspect(settings: ConnectionSettings, credentials: CertificateCredentials) {
    const certificate = await loadConfiguredCertificate(RED, settings, credentials);
    return { certificate, warning: certificateWarning(RED, certificate.info, settings.expiryWarningDays) };
  }

  /** The certificate endpoints' answer for a certificate that was read; never its key. Days left as of now, not of the deploy. */
  function certificateAnswer({ certificate, warning }: Awaited<ReturnType<typeof inspect>>): CertificateReport {
    const info = { ...certificate.info, daysLeft: daysLeft(certificate.info.validTo) };
    return { ok: true, certificate: info, ...(warning && { warning }) };
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
      const target = r.target ? [r.target.organisationsnummer, r.target.undersokning, r.target.referensperiod, r.target.filformat].filter(Boolean).join(', ') : '';
      if (['queued', 'sending', 'interrupted', 'closing'].includes(r.state) && gone(r.node?.id)) {
        const closing = r.state === 'closing';
        const err = closing
          ? new NetworkError(RED._('scb-m2m-config.journal.orphan-uncertain', { file, target }), { code: 'DELIVERY_UNCERTAIN', retryable: false })
          : new ValidationError(RED._('scb-m2m-config.journal.orphan-upload', { file, target }), { code: 'NODE_REMOVED', field: 'node' });
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

  function ScbM2mConfigNode(this: ScbM2mConfigNode & { organisationsnummer: string; undersokning: string; environment: string }, def: ConfigDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    node.organisationsnummer = (def.organisationsnummer ?? '').trim();
    node.undersokning = (def.undersokning ?? '').trim();
    const settings = connectionSettings(def);
    node.environment = settings.environment;
    const users = new Set<Node>();
    // The certificate's standing as a status for the flow nodes; none while it is fine.
    let certificateStatus: NodeStatus | undefined;

    const inspected = inspect(settings, node.credentials ?? {});
    const client: Promise<M2MClient> = inspected.then(({ certificate }) =>
      // The client's lines per request (each segment, each poll) are debug detail; the nodes log the info lines (nodes/shared/log.ts).
      createClient(RED, settings, certificate, (level, message) => (level === 'warn' ? node.warn(message) : node.debug(message))),
    );
    const show = (status: NodeStatus) => {
      certificateStatus = status;
      for (const user of users) user.status(status);
    };
    inspected.then(
      ({ warning, certificate }) => {
        if (!warning) return;
        node.warn(warning);
        show({ fill: 'yellow', shape: 'ring', text: RED._('scb-m2m-config.status.expires-in', { days: certificate.info.daysLeft }) });
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

    node.on('close', (_removed, done) => {
      RED.events.removeListener('flows:started', onStarted);
      users.clear();
      client.then((c) => c.close(), () => undefined).then(() => done(), () => done());
    });
  }

  RED.nodes.registerType(CONFIG_TYPE, ScbM2mConfigNode as (this: never, def: never) => void, {
    credentials: { pfx: { type: 'password' }, passphrase: { type: 'password' } },
  });

  registerDeliveriesRoute(RED);

  /**
   * Dialog values, with the deployed node's credentials for what the dialog did not change.
   * Only an scb-m2m-config node's: an id of another node (a tls-config's passphrase, say) lends nothing.
   */
  function dialogInput(body: Record<string, unknown>) {
    const id = optionalText(body.id);
    const deployed = findConfigNode(RED, id) ? RED.nodes.getCredentials(id as string) : undefined;
    return {
      settings: connectionSettings(body),
      credentials: credentialsFor({ pfx: optionalText(body.pfx), passphrase: optionalText(body.passphrase) }, deployed),
    };
  }

  function answer(res: AdminResponse, work: Promise<unknown>) {
    work.then(
      (body) => res.json(body),
      (err: unknown) => res.json({ ok: false, error: errorReport(err) }),
    );
  }

  RED.httpAdmin.get('/scb-m2m-config/:id/certificate', RED.auth.needsPermission('scb-m2m-config.read'), (req, res) => {
    const node = findConfigNode(RED, req.params.id);
    if (!node) {
      res.status(404).json({ ok: false, error: { code: 'NOT_DEPLOYED' satisfies ErrorCode, message: RED._('scb-m2m-config.errors.not-deployed') } });
      return;
    }
    answer(res, node.certificateReport());
  });

  RED.httpAdmin.post('/scb-m2m-config/certificate', RED.auth.needsPermission('scb-m2m-config.write'), (req, res) => {
    const { settings, credentials } = dialogInput(bodyOf(req));
    answer(
      res,
      inspect(settings, credentials).then(certificateAnswer),
    );
  });

  RED.httpAdmin.post('/scb-m2m-config/test', RED.auth.needsPermission('scb-m2m-config.write'), (req, res) => {
    const { settings, credentials } = dialogInput(bodyOf(req));
    answer(
      res,
      (async () => {
        const { certificate } = await inspect(settings, credentials);
        const client = await createClient(RED, settings, certificate);
        try {
          const beat = await client.heartbeat();
          return { ok: true, serverTime: beat.serverTime, statusCode: beat.statusCode, apiRoot: client.apiRoot };
        } finally {
          await client.close();
        }
      })(),
    );
  });
};
