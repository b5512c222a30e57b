#!/usr/bin/env node
/**
 * Copies icons/* next to each node (nodes/<type>/icons/), because Node-RED looks for a
 * node's icons only in `<dir of the node's .js>/icons`. Plain JS without dependencies so
 * the build can run it before or after tsc. The targets are gitignored.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const source = path.join(root, 'icons');
// The nodes are those package.json declares: a helper folder such as nodes/shared gets none.
const nodeFiles = Object.values(require(path.join(root, 'package.json'))['node-red'].nodes);
const icons = fs.readdirSync(source).filter((name) => fs.statSync(path.join(source, name)).isFile());

for (const nodeDir of new Set(nodeFiles.map((file) => path.dirname(path.join(root, file))))) {
  const target = path.join(nodeDir, 'icons');
  fs.mkdirSync(target, { recursive: true });
  for (const icon of icons) fs.copyFileSync(path.join(source, icon), path.join(target, icon));
}
console.log(`copy-icons: ${icons.length} icon(s) into ${nodeFiles.length} node folder(s)`);
