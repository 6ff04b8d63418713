#!/usr/bin/env node
/**
 * tsc compiles src/ to dist/src/ but copies nothing else. Modules that read a file beside
 * themselves at run time (.sql and .lua files) need it copied to the same place under dist/. Runs after tsc (`npm run build`, `make build`).
 * Plain Node, no dependencies: `node scripts/copy-assets.js [rootDir]`.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ASSET = /\.(sql|lua)$/;
const root = path.resolve(process.argv[2] || path.join(__dirname, '..'));
const from = path.join(root, 'src');
const to = path.join(root, 'dist', 'src');

function copyTree(dir) {
  let copied = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const source = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      copied += copyTree(source);
    } else if (entry.isFile() && ASSET.test(entry.name)) {
      const target = path.join(to, path.relative(from, source));
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.copyFileSync(source, target);
      copied += 1;
    }
  }
  return copied;
}

const copied = copyTree(from);
process.stdout.write(`copy-assets: ${copied} file(s) from src/ to dist/src/\n`);
