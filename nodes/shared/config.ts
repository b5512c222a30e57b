// Until bench/nr-worker.ts (being reworked on its own branch) imports from the config node's folder.
export type { ScbM2mConfigNode } from '../scb-m2m-config/model';
