/**
 * Relations through foreign keys in payload templates (docs/triggers-templates.md, "Relations"):
 * an order's `customer_id`, a single-column foreign key to customers, makes `{{ customer.name }}`
 * read the customers row it points at, and `{{ customer.address.city }}` the addresses row that
 * one points at (two foreign keys; at most `limits.relationDepth`).
 *
 * Related rows are read when the action is delivered, not as of the change's commit. Reads go
 * through one DataLoader per (transaction, related table): the deliveries of one transaction that
 * ask for customers together share one `SELECT … WHERE id = ANY($1)`, and later ones hit its
 * cache. Only the last few transactions' loaders are kept (an LRU), each with a bounded row cache.
 * Values are decoded as the events decode them (src/pg/values.ts, the django format's str()), so
 * `{{ customer.balance }}` has the type and the exact digits an event of customers would carry.
 */
import { join } from 'node:path';
import type { CloudEvent } from 'cloudevents';
import DataLoader from 'dataloader';
import type { Pool } from 'pg';
import type { Config } from '../../config/types';
import { DeliveryError, ErrorCodes, PgceError, errorMessage } from '../../errors';
import type { EventData } from '../../events/format';
import { pyStr } from '../../events/pystr';
import { scrubSecrets } from '../../logger';
import { quoteIdent, quoteTable } from '../../pg/catalog-sql';
import { isRetriableDbError, sqlstateOf } from '../../pg/db-errors';
import { loadSql, withIdentifiers } from '../../pg/sql-file';
import { registerFromPgType, TypeRegistry, USER_TYPES_SQL, type PgTypeRow } from '../../pg/types-registry';
import { decodeValue } from '../../pg/values';
import type { Row } from '../../sources/change';
import { member, MISSING, ROOTS, type RelationLookup } from './context';
import { Lru } from './lru';
import { PayloadError, type Placeholder } from './payload';

const SQL_DIR = join(__dirname, 'sql');
/** The foreign keys of some tables (sql/foreign-keys.sql). */
export const FOREIGN_KEYS_SQL = loadSql(SQL_DIR, 'foreign-keys.sql');
/** One table's rows by key, `:table` and `:key` to be filled (sql/related-rows.sql). */
export const RELATED_ROWS_SQL = loadSql(SQL_DIR, 'related-rows.sql');

/** Transactions whose loaders are kept: deliveries of one transaction arrive close together. */
export const CACHED_TRANSACTIONS = 16;
/** Rows one loader keeps (one related table of one transaction). */
export const CACHED_ROWS_PER_TABLE = 10_000;
/** Keys per statement: a huge transaction reads its customers in several statements. */
export const MAX_KEYS_PER_QUERY = 1_000;

export interface TableRef {
  schema: string;
  name: string;
}

/** A single-column foreign key, as a relation of its table. */
export interface ForeignKey {
  /** `customer`. */
  relation: string;
  /** The referencing column: `customer_id`. */
  column: string;
  constraint: string;
  target: TableRef;
  /** The referenced column: `id`. */
  targetColumn: string;
}

export interface TableRelations {
  /** Relation name → its foreign key. */
  readonly relations: ReadonlyMap<string, ForeignKey>;
  /** Columns in a composite foreign key (not followed), with its name and columns: for messages. */
  readonly composite: ReadonlyMap<string, { constraint: string; columns: string[] }>;
}

/** A statement's result as PostgreSQL printed it: every value text (or null), columns in order. */
export interface TextResult {
  fields: { name: string; dataTypeID: number }[];
  rows: (string | null)[][];
}

/** Runs one statement and returns its values unparsed; what the resolver reads the database with. */
export type TextQuery = (sql: string, values: unknown[]) => Promise<TextResult>;

/** No type parsing: the values are decoded as the events decode them (src/pg/values.ts). */
const RAW_TEXT = { getTypeParser: () => (text: string) => text } as unknown as import('pg').CustomTypesConfig;

/**
 * A TextQuery over `pool`. The pool's sessions must print values as the replication session does
 * (REPLICATION_SESSION_OPTIONS): timestamps in UTC ISO form, intervals ISO 8601, floats exact.
 */
export function textQuery(pool: Pick<Pool, 'query'>): TextQuery {
  return async (text, values) => {
    const result = await pool.query<(string | null)[]>({ text, values, rowMode: 'array', types: RAW_TEXT });
    return { fields: result.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })), rows: result.rows };
  };
}

/**
 * The relation a foreign-key column makes, by Django's attname convention: `customer_id` →
 * `customer`. Undefined for a column without the `_id` suffix (its name is its value's already)
 * or whose rest is not a name a placeholder can write.
 */
export function relationName(column: string): string | undefined {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)_id$/.exec(column);
  return m === null ? undefined : m[1];
}

function tableKeyOf(table: TableRef): string {
  return JSON.stringify([table.schema, table.name]);
}

function display(table: TableRef): string {
  return `${table.schema}.${table.name}`;
}

/** A database error while reading relations: retriable when the database is unavailable, else final. */
function readError(err: unknown, placeholder: Placeholder, what: string, table: TableRef): PgceError {
  if (err instanceof PgceError) return err;
  const privilege = sqlstateOf(err) === '42501' ? ` (the role needs SELECT on ${display(table)}: docs/least-privilege.sql)` : '';
  return new DeliveryError(`${placeholder.where}: ${placeholder.text}: reading ${what} failed: ${scrubSecrets(errorMessage(err))}${privilege}`, {
    retriable: isRetriableDbError(err, 'query'),
    code: ErrorCodes.RELATION,
    cause: err,
    detail: { placeholder: placeholder.path.join('.'), key: placeholder.where, table: display(table), sqlstate: sqlstateOf(err) || undefined },
  });
}

function payloadError(placeholder: Placeholder, why: string): PayloadError {
  return new PayloadError(`${placeholder.where}: ${placeholder.text}: ${why}`, { placeholder: placeholder.path.join('.'), key: placeholder.where });
}

/**
 * The foreign keys of the tables payloads read, from pg_constraint: read for the rules' tables
 * when the resolver starts, and for any other table the first time a relation leads there. Kept
 * for the process's life: a foreign key added while running is followed after a restart.
 */
export class RelationCatalog {
  private readonly tables = new Map<string, Promise<TableRelations>>();

  constructor(private readonly query: TextQuery) {}

  /** Reads the foreign keys of the tables not read yet, in one statement. A failure is forgotten (tried again later). */
  load(tables: readonly TableRef[]): Promise<TableRelations[]> {
    const todo = new Map<string, TableRef>();
    for (const t of tables) if (!this.tables.has(tableKeyOf(t))) todo.set(tableKeyOf(t), t);
    if (todo.size > 0) {
      const reading = this.query(FOREIGN_KEYS_SQL, [[...todo.values()].map((t) => quoteTable(t.schema, t.name))]).then(groupForeignKeys);
      for (const [key] of todo) {
        const entry = reading.then((byTable) => byTable.get(key) ?? { relations: new Map(), composite: new Map() });
        this.tables.set(key, entry);
        entry.catch(() => {
          if (this.tables.get(key) === entry) this.tables.delete(key);
        });
      }
    }
    return Promise.all(tables.map((t) => this.tables.get(tableKeyOf(t))!));
  }

  async relationsOf(table: TableRef): Promise<TableRelations> {
    return (await this.load([table]))[0];
  }
}

/** FOREIGN_KEYS_SQL rows → each table's relations. */
function groupForeignKeys(result: TextResult): Map<string, TableRelations> {
  const out = new Map<string, { relations: Map<string, ForeignKey>; composite: Map<string, { constraint: string; columns: string[] }> }>();
  for (const [schema, table, constraint, columnsJson, refSchema, refTable, refColumnsJson] of result.rows as string[][]) {
    const key = tableKeyOf({ schema, name: table });
    let entry = out.get(key);
    if (entry === undefined) out.set(key, (entry = { relations: new Map(), composite: new Map() }));
    const columns = JSON.parse(columnsJson) as string[];
    const refColumns = JSON.parse(refColumnsJson) as string[];
    if (columns.length !== 1) {
      for (const c of columns) if (!entry.composite.has(c)) entry.composite.set(c, { constraint, columns });
      continue;
    }
    const relation = relationName(columns[0]);
    // Constraints come by name: of two foreign keys on one column, the first by name is followed.
    if (relation === undefined || entry.relations.has(relation)) continue;
    entry.relations.set(relation, {
      relation, column: columns[0], constraint, target: { schema: refSchema, name: refTable }, targetColumn: refColumns[0],
    });
  }
  return out;
}

/** A row reached while following a placeholder, and the relations of it fetched so far. */
interface Reached {
  readonly table: TableRef;
  readonly row: Row;
  /** Relation name → the row it leads to (null: a NULL foreign key), shared by placeholders. */
  readonly pending: Map<string, Promise<Reached | null>>;
  readonly done: Map<string, Reached | null>;
}

function reached(table: TableRef, row: Row): Reached {
  return { table, row, pending: new Map(), done: new Map() };
}

export interface RelationResolverOptions {
  query: TextQuery;
  /** `limits.relationDepth`: foreign keys one placeholder may follow (≥ 1 to follow any). */
  depth: number;
  /** `events.format`: related rows take the values an event of their table would carry. */
  format: Config['events']['format'];
  /** The captured tables and the rules' tables: where a change's row may come from. */
  tables: readonly (TableRef & { app?: string; model?: string })[];
  transactions?: number;
  rowsPerTable?: number;
}

/**
 * Fetches what a payload's placeholders read through foreign keys, before it renders, and answers
 * the template context's relation hook from it. One per process (its caches are shared by every
 * rule and action).
 */
export class RelationResolver {
  readonly catalog: RelationCatalog;
  private readonly query: TextQuery;
  private readonly registry = new TypeRegistry();
  /** Transaction → (related table and column → its loader). */
  private readonly loaders: Lru<string, Map<string, DataLoader<string, Row | null>>>;

  constructor(private readonly options: RelationResolverOptions) {
    this.query = options.query;
    this.catalog = new RelationCatalog(options.query);
    this.loaders = new Lru(options.transactions ?? CACHED_TRANSACTIONS);
  }

  /** Reads the foreign keys of the captured tables ahead of the first delivery; a failure is read again on demand. */
  async preload(): Promise<void> {
    await this.catalog.load(this.options.tables).catch(() => undefined);
  }

  /**
   * The relation hook for one delivery of `event` (the change's event) whose payload has
   * `placeholders`: fetches every relation they name (a root name that is no column and no root of
   * the template context), then answers synchronously. Undefined when no placeholder names one.
   * Throws a PayloadError (final) for a missing related row, a placeholder beyond the depth, a
   * composite foreign key; a DeliveryError, retriable when the database is unavailable, for a read
   * that failed.
   */
  async prepare(event: CloudEvent<unknown>, row: Row | undefined, placeholders: readonly Placeholder[]): Promise<RelationLookup | undefined> {
    if (row === undefined) return undefined;
    const wanted = placeholders.filter((p) => !(ROOTS as readonly string[]).includes(p.path[0]) && member(row, p.path[0]) === MISSING);
    if (wanted.length === 0) return undefined;
    const table = this.tableOf(event);
    if (table === undefined) {
      const name = (event.data as EventData | undefined)?.db_table;
      throw payloadError(wanted[0], `cannot tell which table ${name} this change is of (the same name in several schemas, told apart by neither app nor model)`);
    }
    const origin = reached(table, row);
    const transaction = transactionOf(event);
    await Promise.all(wanted.map((p) => this.follow(origin, p, 0, transaction)));
    const objects = new Map<Reached, Row>();
    return (name) => {
      if (!origin.done.has(name)) return MISSING;
      const next = origin.done.get(name)!;
      return next === null ? null : objectOf(next, objects);
    };
  }

  /** Follows `placeholder` from `at` (its segment `i`), fetching each relation once per delivery. */
  private async follow(at: Reached, placeholder: Placeholder, i: number, transaction: string): Promise<void> {
    const name = placeholder.path[i];
    // A column of a related row wins over a relation of the same name; from there the path is plain JSON.
    if (i > 0 && member(at.row, name) !== MISSING) return;
    let relations: TableRelations;
    try {
      relations = await this.catalog.relationsOf(at.table);
    } catch (err) {
      throw readError(err, placeholder, `the foreign keys of ${display(at.table)}`, at.table);
    }
    const fk = relations.relations.get(name);
    if (fk === undefined) {
      const composite = relations.composite.get(`${name}_id`);
      if (composite !== undefined) {
        throw payloadError(placeholder, `${name}_id is part of the composite foreign key ${composite.constraint} (${composite.columns.join(', ')}); only single-column foreign keys are relations`);
      }
      return; // nothing to fetch: the renderer says what is missing
    }
    if (i + 1 > this.options.depth) {
      throw payloadError(placeholder, `${placeholder.path.slice(0, i + 1).join('.')} would follow ${i + 1} foreign keys ` +
        `(${display(at.table)}.${fk.column} → ${display(fk.target)}), beyond limits.relationDepth (${this.options.depth})`);
    }
    let pending = at.pending.get(name);
    if (pending === undefined) {
      pending = this.fetch(at, fk, placeholder, i, transaction);
      at.pending.set(name, pending);
    }
    const next = await pending;
    at.done.set(name, next);
    if (next !== null && i + 1 < placeholder.path.length) await this.follow(next, placeholder, i + 1, transaction);
  }

  private async fetch(at: Reached, fk: ForeignKey, placeholder: Placeholder, i: number, transaction: string): Promise<Reached | null> {
    const value = at.row[fk.column];
    const path = placeholder.path.slice(0, i + 1).join('.');
    if (value === undefined) {
      throw payloadError(placeholder, `${path}: this change's row has no ${fk.column} (a delete sends only the key without REPLICA IDENTITY FULL)`);
    }
    // NULL: no related row, as Django's `order.customer` is None. The django format prints it None.
    if (value === null || (this.options.format === 'django' && value === 'None')) return null;
    const key = keyText(value);
    let related: Row | null;
    try {
      related = await this.loader(transaction, fk).load(key);
    } catch (err) {
      throw readError(err, placeholder, display(fk.target), fk.target);
    }
    if (related === null) {
      throw payloadError(placeholder, `${path}: no row of ${display(fk.target)} has ${fk.targetColumn} = ${key} ` +
        `(${display(at.table)}.${fk.column}); related rows are read when the action is delivered: it may have been deleted since the change`);
    }
    return reached(fk.target, related);
  }

  private loader(transaction: string, fk: ForeignKey): DataLoader<string, Row | null> {
    let byTable = this.loaders.get(transaction);
    if (byTable === undefined) this.loaders.set(transaction, (byTable = new Map()));
    const key = JSON.stringify([fk.target.schema, fk.target.name, fk.targetColumn]);
    let loader = byTable.get(key);
    if (loader === undefined) {
      const sql = withIdentifiers(RELATED_ROWS_SQL, { table: quoteTable(fk.target.schema, fk.target.name), key: quoteIdent(fk.targetColumn) });
      loader = new DataLoader<string, Row | null>((keys) => this.rowsByKey(sql, fk.targetColumn, keys), {
        maxBatchSize: MAX_KEYS_PER_QUERY,
        cacheMap: new Lru(this.options.rowsPerTable ?? CACHED_ROWS_PER_TABLE),
      });
      byTable.set(key, loader);
    }
    return loader;
  }

  /** One statement for a batch of keys; each key's row, or null when there is none. */
  private async rowsByKey(sql: string, column: string, keys: readonly string[]): Promise<(Row | null)[]> {
    const result = await this.query(sql, [keys]);
    await this.resolveTypes(result.fields.map((f) => f.dataTypeID));
    const byKey = new Map<string, Row>();
    for (const values of result.rows) {
      const row = this.decodeRow(result.fields, values);
      byKey.set(keyText(row[column]), row);
    }
    return keys.map((k) => byKey.get(k) ?? null);
  }

  /** A row as an event of its table would carry it: JSON-natural values, or str() in the django format. */
  private decodeRow(fields: TextResult['fields'], values: (string | null)[]): Row {
    const row: Row = {};
    fields.forEach((field, i) => {
      const text = values[i];
      const value = text === null ? null : decodeValue(text, field.dataTypeID, this.registry);
      row[field.name] = this.options.format === 'django' ? pyStr(value, field.dataTypeID) : value;
    });
    // Shared by every delivery that reads it, as the event's own rows are: read-only.
    return Object.freeze(row);
  }

  /** User types (enums, domains, arrays of them) registered before decoding, as the capture's catalog does. */
  private async resolveTypes(oids: number[]): Promise<void> {
    let todo = [...new Set(oids)].filter((oid) => !this.registry.has(oid));
    for (let depth = 0; todo.length > 0 && depth < 5; depth++) {
      const result = await this.query(USER_TYPES_SQL, [todo]);
      const rows = result.rows.map((values) => Object.fromEntries(result.fields.map((f, i) => [f.name, values[i]])) as unknown as PgTypeRow);
      registerFromPgType(this.registry, rows);
      // Known from now on, even when pg_type had no row: never asked again.
      for (const oid of todo) if (!this.registry.has(oid)) this.registry.register(oid, { kind: 'other' });
      todo = [...new Set(rows.flatMap((r) => [Number(r.typelem), Number(r.typbasetype)]))].filter((oid) => oid && !this.registry.has(oid));
    }
  }

  /** The table of the change `event` is of: its `db_table`, told apart by app and model when several schemas have one. */
  private tableOf(event: CloudEvent<unknown>): TableRef | undefined {
    const name = (event.data as EventData | undefined)?.db_table;
    // The first of each table: a captured table's entry (with app and model) before a rule's.
    const byKey = new Map<string, RelationResolverOptions['tables'][number]>();
    for (const t of this.options.tables) if (t.name === name && !byKey.has(tableKeyOf(t))) byKey.set(tableKeyOf(t), t);
    const unique = [...byKey.values()];
    if (unique.length <= 1) return unique[0];
    const app = event.app ?? event.djangoapp;
    const model = event.model ?? event.djangomodel;
    const matching = unique.filter((t) => t.app === app && t.model === model);
    return matching.length === 1 ? matching[0] : undefined;
  }
}

/** A reached row as templates read it: its columns, and the relations fetched, as members that JSON leaves out. */
function objectOf(at: Reached, objects: Map<Reached, Row>): Row {
  if (at.done.size === 0) return at.row;
  let out = objects.get(at);
  if (out === undefined) {
    out = { ...at.row };
    objects.set(at, out);
    for (const [name, next] of at.done) {
      // Not enumerable: {{ customer }} renders the row's columns only, whatever else the template reads.
      Object.defineProperty(out, name, { value: next === null ? null : objectOf(next, objects), enumerable: false });
    }
  }
  return out;
}

/** How a key is compared: the value as the event carries it, as text (`3`, `"A-7"`, a uuid). */
function keyText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * The transaction of a change's event: the commit LSN its id starts with (README, "The event";
 * an action's id extends it). Another id is its own transaction: nothing shared.
 */
export function transactionOf(event: CloudEvent<unknown>): string {
  const m = /^([0-9A-F]{16})-\d{8}(?:\/|$)/.exec(event.id);
  return m === null ? event.id : m[1];
}

/**
 * The process's resolver; undefined when `limits.relationDepth` is 0 (relations off) or no rule
 * has a payload template (nothing could read a relation).
 */
export function createRelationResolver(config: Config, query: TextQuery): RelationResolver | undefined {
  const depth = config.limits?.relationDepth ?? 2;
  if (depth < 1 || !(config.triggers ?? []).some((r) => r.payload !== undefined)) return undefined;
  const ruleTables = (config.triggers ?? []).flatMap((r) => r.tables);
  return new RelationResolver({ query, depth, format: config.events.format, tables: [...config.tables, ...ruleTables] });
}
