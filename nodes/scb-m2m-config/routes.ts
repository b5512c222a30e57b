/**
 * The config node's admin endpoints, for its editor dialog: the deployed node's certificate
 * (GET /scb-m2m-config/:id/certificate), a certificate given in the dialog before a deploy
 * (POST /scb-m2m-config/certificate) and a test connection (POST /scb-m2m-config/test). They
 * run the same checks as a deploy (model.ts) and answer { ok: false, error } rather than fail.
 */
import type { ErrorCode } from '../../lib/errors';
import type { AdminRequest, AdminResponse, NodeAPI } from '../shared/red';
import {
  certificateAnswer,
  connectionSettings,
  createClient,
  credentialsFor,
  errorReport,
  findConfigNode,
  inspectCertificate,
} from './model';

function bodyOf(req: AdminRequest): Record<string, unknown> {
  return req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function answer(res: AdminResponse, work: Promise<unknown>) {
  work.then(
    (body) => res.json(body),
    (err: unknown) => res.json({ ok: false, error: errorReport(err) }),
  );
}

export function registerConfigRoutes(RED: NodeAPI): void {
  /**
   * Dialog values, with the deployed node's credentials for what the dialog did not change.
   * Only an scb-m2m-config node's: an id of another node (a tls-config's passphrase, say) lends nothing.
   */
  function dialogInput(req: AdminRequest) {
    const body = bodyOf(req);
    const id = optionalText(body.id);
    const deployed = findConfigNode(RED, id) ? RED.nodes.getCredentials(id as string) : undefined;
    return {
      settings: connectionSettings(body),
      credentials: credentialsFor({ pfx: optionalText(body.pfx), passphrase: optionalText(body.passphrase) }, deployed),
    };
  }

  RED.httpAdmin.get('/scb-m2m-config/:id/certificate', RED.auth.needsPermission('scb-m2m-config.read'), (req, res) => {
    const node = findConfigNode(RED, req.params.id);
    if (!node) {
      res.status(404).json({
        ok: false,
        error: { code: 'NOT_DEPLOYED' satisfies ErrorCode, message: RED._('scb-m2m-config.errors.not-deployed') },
      });
      return;
    }
    answer(res, node.certificateReport());
  });

  RED.httpAdmin.post('/scb-m2m-config/certificate', RED.auth.needsPermission('scb-m2m-config.write'), (req, res) => {
    const { settings, credentials } = dialogInput(req);
    answer(res, inspectCertificate(RED, settings, credentials).then(certificateAnswer));
  });

  RED.httpAdmin.post('/scb-m2m-config/test', RED.auth.needsPermission('scb-m2m-config.write'), (req, res) => {
    const { settings, credentials } = dialogInput(req);
    answer(
      res,
      (async () => {
        const { certificate } = await inspectCertificate(RED, settings, credentials);
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
}
