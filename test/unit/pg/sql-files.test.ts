/**
 * The catalog and set-up SQL lives in .sql files with a contract header (src/pg/sql-file.ts).
 * These tests hold every file to its header: the parameters it declares are the ones the statement
 * uses, the same for identifier placeholders, and it says who runs it and what it returns. They
 * read the copies beside the compiled modules, which is what the code loads at run time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { loadSql, placeholdersOf, readSqlFile, statementOf, withIdentifiers } from '../../../src/pg/sql-file';
import { quoteIdent } from '../../../src/pg/catalog-sql';

const DIST_SRC = path.join(__dirname, '..', '..', '..', 'src');
/** Directories whose .sql files follow the contract; slot-record.sql is DDL with its own header. */
const DIRS = [path.join(DIST_SRC, 'pg', 'sql'), path.join(DIST_SRC, 'sources', 'logical', 'sql'), path.join(DIST_SRC, 'sources', 'journal', 'sql'), path.join(DIST_SRC, 'routing', 'triggers', 'sql'), path.join(DIST_SRC, 'sources', 'backfill', 'sql')];
const NOT_CONTRACT = new Set(['slot-record.sql']);

function contractFiles(): { dir: string; file: string }[] {
  return DIRS.flatMap((dir) => fs.readdirSync(dir).filter((f) => f.endsWith('.sql') && !NOT_CONTRACT.has(f)).map((file) => ({ dir, file })));
}

/** The header: the leading comment lines, without their `--`. */
function headerOf(text: string): string[] {
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trimStart().startsWith('--')) lines.push(line.replace(/^\s*--\s?/, ''));
    else if (line.trim() !== '') break;
  }
  return lines;
}

const parametersIn = (text: string): number[] => [...new Set([...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))].sort();

describe('pg/sql-file: SQL files and their contract headers', () => {
  const files = contractFiles();

  it('finds the catalog and set-up files (built beside the compiled modules)', () => {
    const names = files.map((f) => f.file);
    for (const expected of ['tables.sql', 'slot.sql', 'user-types.sql', 'create-publication.sql', 'start-replication.sql', 'heartbeat.sql', 'foreign-keys.sql', 'related-rows.sql']) {
      expect(names, `${expected} under dist/src (node scripts/copy-assets.js copies .sql files)`).to.include(expected);
    }
  });

  for (const { dir, file } of contractFiles()) {
    describe(path.relative(DIST_SRC, path.join(dir, file)), () => {
      const text = readSqlFile(dir, file);
      const header = headerOf(text);
      const statement = statementOf(text);

      it('opens with its name, says who runs it, its parameters and what it returns', () => {
        expect(header[0], 'first header line names the file').to.match(new RegExp(`^${file.replace(/\.sql$/, '')}: \\S`));
        expect(header.some((l) => l.startsWith('Run by: ')), '"Run by:" line').to.equal(true);
        expect(header.some((l) => l.startsWith('Parameters:')), '"Parameters:" line').to.equal(true);
        expect(header.some((l) => l.startsWith('Returns:')), '"Returns:" line').to.equal(true);
      });

      it('declares exactly the $n parameters the statement uses', () => {
        const declared = header.flatMap((l) => /^\s+\$(\d+)\s/.exec(l) ?? []).filter((_, i) => i % 2 === 1).map(Number).sort();
        expect(declared, `parameters declared in the header of ${file}`).to.deep.equal(parametersIn(statement));
        if (declared.length === 0) expect(header.some((l) => /^Parameters: none/.test(l)), `${file} says "Parameters: none"`).to.equal(true);
      });

      it('declares exactly the :name placeholders the statement uses', () => {
        const declared = header.flatMap((l) => /^\s+:([a-z_]+)\s/.exec(l)?.[1] ?? []).sort();
        expect(declared, `placeholders declared in the header of ${file}`).to.deep.equal([...placeholdersOf(statement)].sort());
      });

      it('is one statement, without comments, as sent', () => {
        expect(statement).to.not.match(/^\s*--/m);
        expect(statement.replace(/'[^']*'/g, '')).to.not.contain(';');
        expect(loadSql(dir, file)).to.equal(statement);
      });
    });
  }

  it('a missing file names the build step that copies it', () => {
    expect(() => loadSql(DIRS[0], 'no-such-file.sql')).to.throw(/no-such-file\.sql is missing: .*copy-assets/);
  });

  it('withIdentifiers replaces :name placeholders only, not ::casts, and refuses unknown ones', () => {
    const sql = 'ALTER PUBLICATION :publication SET TABLE :tables -- $1::text';
    expect(withIdentifiers(sql, { publication: quoteIdent('a"b'), tables: '"s"."t"' }))
      .to.equal('ALTER PUBLICATION "a""b" SET TABLE "s"."t" -- $1::text');
    expect(() => withIdentifiers(sql, { publication: '"p"' })).to.throw(/unknown placeholder :tables/);
    // A quoted identifier that contains a colon is not read again as a placeholder.
    expect(withIdentifiers('DROP PUBLICATION :publication', { publication: quoteIdent('x:tables') })).to.equal('DROP PUBLICATION "x:tables"');
  });
});
