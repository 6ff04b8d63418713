#!/usr/bin/env node
'use strict';
/**
 * `make run`'s SQL without psql (a machine with the embedded database has no PostgreSQL client):
 *
 *   node scripts/demo-sql.js URL SQL
 *
 * Runs SQL (one or more statements, simple protocol) and prints the first column of the last
 * result's rows, one per line. Exits 1 with PostgreSQL's message on an error.
 */
const { Client } = require('pg');

async function main() {
  const [url, sql] = process.argv.slice(2);
  if (!url || !sql) {
    process.stderr.write('usage: node scripts/demo-sql.js URL SQL\n');
    process.exit(2);
  }
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const results = await client.query(sql);
    const last = Array.isArray(results) ? results[results.length - 1] : results;
    for (const row of last.rows ?? []) process.stdout.write(`${Object.values(row)[0]}\n`);
  } finally {
    await client.end();
  }
}

main().catch((err) => {
  process.stderr.write(`demo-sql: ${err.message}\n`);
  process.exit(1);
});
