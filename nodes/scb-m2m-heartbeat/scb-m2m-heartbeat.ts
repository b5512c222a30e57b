/** scb-m2m-heartbeat: asks SCB whether the certificate and the connection work. */
import type { NodeAPI, NodeDef, Node } from '../shared/red';
import { handleInput } from '../shared/flow-node';

interface HeartbeatDef extends NodeDef {
  config?: string;
}

/** hh:mm:ss of the local clock, what a user compares with their own watch. */
function clockTime(date: Date): string {
  return date.toTimeString().slice(0, 8);
}

export = function (RED: NodeAPI): void {
  function ScbM2mHeartbeatNode(this: Node, def: HeartbeatDef) {
    RED.nodes.createNode(this, def);
    const node = this;
    handleInput(RED, node, def.config, async (msg, { config, client, signal, send }) => {
      const result = await client.heartbeat({ signal });
      msg.payload = { ok: true, serverTime: result.serverTime, statusCode: result.statusCode };
      // The client exists, so its certificate was read: what a reminder flow needs of it.
      const report = await config.certificateReport();
      if (report.ok) {
        const { subject, validTo, daysLeft } = report.certificate;
        msg.certificate = { subject, notAfter: validTo, daysLeft };
      }
      node.status({
        fill: 'green',
        shape: 'dot',
        text: RED._('scb-m2m-heartbeat.status.ok', { time: clockTime(new Date()) }),
      });
      send(msg);
    });
  }
  RED.nodes.registerType('scb-m2m-heartbeat', ScbM2mHeartbeatNode);
};
