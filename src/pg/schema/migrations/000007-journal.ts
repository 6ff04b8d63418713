import type { Knex } from 'knex';
import { quoteIdent } from '../../catalog-sql';
import { derivedName, type SchemaNames } from '../names';
import type { SchemaMigration } from './types';

/**
 * The journal of `capture.mode: trigger` (README "Capture modes", docs/journal.md): one row per
 * captured change, written by the trigger functions `setup` generates per capture (named after
 * capture.slot, src/sources/journal/names.ts), read and deleted by that capture's source.
 *   id          the row's place in write order (a transaction's rows, and a row's successive
 *               changes, take increasing ids); the event id is made from it
 *   capture     which capture wrote it (capture.slot): two configurations of one database each
 *               get their own copy of a change they both capture
 *   txid        the writing transaction (pg_current_xact_id(), 64 bits, never wraps): the reader
 *               hands a row over once that transaction is visible in its snapshot
 *   relid       the captured table (the configured one; a partition's change names its root)
 *   op          I, U, D or T (truncate)
 *   old_row     UPDATE and DELETE: row_to_json(OLD); new_row: INSERT and UPDATE: row_to_json(NEW).
 *               json, not jsonb: json keeps the text row_to_json wrote, so numbers keep their exact
 *               digits and a json column its member order and spelling; jsonb would re-normalise.
 *   written_at  the writing transaction's start (now()): the event's time
 * IF NOT EXISTS: safe to run again when the table went missing (teardown drops it empty).
 */
export function journalObjects(n: SchemaNames): { table: string; txidIndex: string } {
  return {
    table: `${quoteIdent(n.schema)}.${quoteIdent(n.journal)}`,
    txidIndex: quoteIdent(derivedName(n.journal, '_capture_txid')),
  };
}

const SQL = (n: SchemaNames) => {
  const { table, txidIndex } = journalObjects(n);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(n.schema)}`,
    `CREATE TABLE IF NOT EXISTS ${table} (
  id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  capture    text        NOT NULL,
  txid       xid8        NOT NULL DEFAULT pg_current_xact_id(),
  relid      oid         NOT NULL,
  op         "char"      NOT NULL,
  old_row    json,
  new_row    json,
  written_at timestamptz NOT NULL DEFAULT now()
)`,
    // The reader's range: this capture's rows of transactions it has not seen yet (txid >= xmin).
    `CREATE INDEX IF NOT EXISTS ${txidIndex} ON ${table} (capture, txid)`,
  ];
};

export const journal: SchemaMigration = {
  name: '000007_journal',
  table: (n) => n.journal,
  async up(knex: Knex, names: SchemaNames) {
    for (const sql of SQL(names)) await knex.raw(sql);
  },
};
