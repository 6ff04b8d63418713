import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { loadConfig, type LoadConfigOptions } from '../../../src/config/load';
import { ConfigError } from '../../../src/errors';

/** A throw-away folder for configuration files, removed by `cleanup()`. */
export class TempFiles {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgce-config-'));

  write(name: string, text: string): string {
    const file = path.join(this.dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    return file;
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A real certificate (a self-signed EC test CA, valid until 2126) for K_CA_CERTS, which is parsed
 * as X.509 when the configuration loads.
 */
export const TEST_CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBmjCCAT+gAwIBAgIUYzovV26eQTNsRKNsHQhpDiO/48AwCgYIKoZIzj0EAwIw
ITEfMB0GA1UEAwwWcGctY2xvdWRldmVudHMgdGVzdCBDQTAgFw0yNjEyMDEyMTA5
MzVaGA8yMTI2MTEwNzIxMDkzNVowITEfMB0GA1UEAwwWcGctY2xvdWRldmVudHMg
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABDbowUTThzT9L7o3+Mf9
YwFd1PWVXwYN5lZ0YweoRSpUN5yq34Dripx/yqwAhDHqPZVXJ1u3nNiIEyLa7jeh
VnejUzBRMB0GA1UdDgQWBBReqQrKqICukiTwZ4PphyLKBjLBPDAfBgNVHSMEGDAW
gBReqQrKqICukiTwZ4PphyLKBjLBPDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49
BAMCA0kAMEYCIQCAgM+0O7FdNZ4zx4VG7AzpWLdpIMQgQKTaKC8QLU87uAIhAKC5
65t+CCDX3L6Oey0XrF8pXJ4MeTPHkohAt4PqVCoi
-----END CERTIFICATE-----
`;

/** The smallest environment that loads: a database and a table. */
export const MINIMAL_ENV = Object.freeze({
  DATABASE_URL: 'postgres://app@127.0.0.1:5432/app',
  PG_CLOUDEVENTS_TABLES: 'public.orders',
});

/** Runs loadConfig expecting a ConfigError; returns it. */
export function configError(opts: LoadConfigOptions): ConfigError {
  try {
    loadConfig(opts);
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('loadConfig accepted the configuration');
}

/** Asserts one problem line starts with `key:` and contains every fragment. */
export function expectProblem(err: ConfigError, key: string, ...fragments: string[]): void {
  const line = err.problems.find((p) => p.startsWith(`${key}:`));
  expect(line, `no problem for ${key} in:\n${err.problems.join('\n')}`).to.be.a('string');
  for (const fragment of fragments) expect(line).to.include(fragment);
  expect(err.message).to.include(line as string);
}
