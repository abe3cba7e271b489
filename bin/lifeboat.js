#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript (npm ci runs the build through "prepare").
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'lib', 'src', 'client', 'cli.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('lifeboat is not built yet: run `npm ci` (or `npm run build`) in the lifeboat checkout first.\n');
  process.exit(2);
}
require(entry);
