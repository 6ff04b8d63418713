import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * SQL lives in named .sql files beside the module that runs it (src/pg/sql/, src/sources/logical/sql/),
 * read once when that module loads. Each file opens with a contract header, comment lines that
 * say what the statement is for, who runs it, its parameters ($1, $2, … with their types), the
 * columns it returns, and any identifier placeholders. The header is for readers and for the
 * contract test (test/unit/pg/sql-files.test.ts); what is sent to PostgreSQL is the statement
 * after it, without its final semicolon.
 *
 * Values are always parameters. Where a statement must contain an identifier (CREATE PUBLICATION
 * "x", a replication command, which takes no parameters), the file writes `:name` and the module
 * replaces it through `withIdentifiers` with text it quoted itself (quoteIdent and friends), never
 * with raw input.
 */

/** `:name`, not part of a `::type` cast. */
const PLACEHOLDER = /(?<![:\w]):([a-z_]+)\b/g;

/** The statement of `dir/file`: the header and blank lines before it removed, trailing `;` dropped. */
export function loadSql(dir: string, file: string): string {
  return statementOf(readSqlFile(dir, file));
}

/** The whole file, header included; a missing file names the build step that copies it. */
export function readSqlFile(dir: string, file: string): string {
  const path = join(dir, file);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(
      `${path} is missing: the build must copy the .sql files next to the compiled code ` +
        `(node scripts/copy-assets.js after tsc) (${(err as Error).message})`,
    );
  }
}

/** The statement in a file's text: leading comment and blank lines removed, trimmed, no final `;`. */
export function statementOf(text: string): string {
  const lines = text.split('\n');
  let first = 0;
  while (first < lines.length && (lines[first].trim() === '' || lines[first].trimStart().startsWith('--'))) first++;
  return lines.slice(first).join('\n').trim().replace(/;$/, '');
}

/** The `:name` placeholders a statement uses, in order of first use. */
export function placeholdersOf(sql: string): string[] {
  return [...new Set([...sql.matchAll(PLACEHOLDER)].map((m) => m[1]))];
}

/**
 * `sql` with each `:name` replaced by `quoted[name]`: text the caller already quoted (quoteIdent,
 * quoteTable, quoteLiteral) or built from digits (an LSN). An unknown placeholder is a bug.
 */
export function withIdentifiers(sql: string, quoted: Record<string, string>): string {
  return sql.replace(PLACEHOLDER, (_m, name: string) => {
    const value = quoted[name];
    if (value === undefined) throw new Error(`SQL names an unknown placeholder :${name}`);
    return value;
  });
}
