/**
 * The SCB sidebar plugin, as Node-RED loads it (package.json "node-red.plugins"): its runtime part
 * on the real journal. The editor part is scb-m2m-deliveries.html beside it.
 */
import { journalEvents } from '../../lib/journal';
import { journalFor } from '../../nodes/shared/journal';
import type { NodeAPI } from '../../nodes/shared/red';
import { registerDeliveriesPlugin } from './deliveries';

export = function (RED: NodeAPI): void {
  registerDeliveriesPlugin(RED, { journalEvents, journalFor });
};
