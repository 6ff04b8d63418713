import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { configureLogger, logger, textLine } from '../../src/logger';

describe('logger', () => {
  after(() => configureLogger({}));

  it('text format: a record as `warning: message (key=value)`, errors by their message', () => {
    const lines: string[] = [];
    configureLogger({ level: 'info', format: 'text', destination: { write: (l: string) => lines.push(l) } });
    logger('setup').warn({ table: 'public.items', err: new Error('boom'), n: 2 }, 'replica identity default');
    logger('setup').info('created');
    logger('setup').debug('not shown at info');
    expect(lines).to.deep.equal(['warning: replica identity default (table=public.items, err=boom, n=2)\n', 'notice: created\n']);
    expect(textLine('{"level":"error","msg":"x","time":"t","component":"c"}')).to.equal('error: x\n');
  });

  it('json format (the default) stays one JSON object per line', () => {
    const lines: string[] = [];
    configureLogger({ level: 'info', destination: { write: (l: string) => lines.push(l) } });
    logger('run').warn('careful');
    expect(JSON.parse(lines[0])).to.include({ level: 'warn', msg: 'careful', component: 'run' });
  });

  it('an unknown LOG_LEVEL does not throw while the module loads (a fresh node process)', () => {
    const root = join(__dirname, '..', '..', '..');
    const probe = `require(${JSON.stringify(join(root, 'dist', 'src', 'logger.js'))}).logger('x').info('loaded'); process.stdout.write('ok')`;
    for (const level of ['verbose', 'INFO']) {
      const out = execFileSync(process.execPath, ['-e', probe], { env: { ...process.env, LOG_LEVEL: level }, encoding: 'utf8', stdio: 'pipe' });
      expect(out, level).to.equal('ok');
    }
  });
});
