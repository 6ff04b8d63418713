import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * CAs to trust for an https sink: the system's, K_CA_CERTS, and every file in `caCertsDir`
 * (Knative mounts custom trust bundles at /knative-custom-certs). A missing directory is normal.
 * Passing `ca` replaces Node's defaults, hence `rootCertificates` first.
 */
export function trustedCAs(caCerts: string | undefined, caCertsDir: string): string[] {
  const extra = [...(caCerts ? pemCertificates(caCerts) : []), ...dirCertificates(caCertsDir)];
  return extra.length === 0 ? [...rootCertificates] : [...rootCertificates, ...extra];
}

function pemCertificates(text: string): string[] {
  return text.match(PEM_CERT) ?? [];
}

function dirCertificates(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const certs: string[] = [];
  // Kubernetes volume mounts hold `..data`-style hidden entries next to the real files.
  for (const name of names.filter((n) => !n.startsWith('.')).sort()) {
    const path = join(dir, name);
    try {
      if (!statSync(path).isFile()) continue;
      certs.push(...pemCertificates(readFileSync(path, 'utf8')));
    } catch {
      // An unreadable file is skipped; the TLS handshake then names the untrusted certificate.
    }
  }
  return certs;
}
