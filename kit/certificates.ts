/**
 * Certificates for tests of TLS on real servers, made with the openssl
 * command line as an operator would: a certificate authority, and a server
 * certificate it signs for the names a client will verify (verify-full checks
 * both the chain and the name).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertificateAuthority {
  /** PEM of the CA's certificate: what a client is given to trust (sslrootcert, tls.ca). */
  certFile: string;
  keyFile: string;
}

export interface ServerCertificate {
  certFile: string;
  keyFile: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A fresh CA named `name`, in a temp folder of its own. */
export function makeCertificateAuthority(name: string): CertificateAuthority {
  const dir = mkdtempSync(join(tmpdir(), 'vm-ca-'));
  const ca = { certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') };
  openssl(['req', '-x509', ...EC_KEY, '-days', '2', '-subj', `/CN=${name}`, '-keyout', ca.keyFile, '-out', ca.certFile]);
  return ca;
}

/**
 * A server certificate signed by `ca` for `names` (IP addresses and DNS names), written into `dir`, valid for two days;
 * `{ expired: true }` makes one whose validity ended as it began, as a certificate nobody renewed.
 */
export function issueServerCertificate(
  ca: CertificateAuthority,
  dir: string,
  names: readonly string[],
  options: { expired?: boolean } = {},
): ServerCertificate {
  const cert = { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') };
  const request = join(dir, 'server.csr');
  const extensions = join(dir, 'server.ext');
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(extensions, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  openssl(['req', ...EC_KEY, '-subj', `/CN=${names[0] ?? 'server'}`, '-keyout', cert.keyFile, '-out', request]);
  openssl([
    'x509',
    '-req',
    '-in',
    request,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-days',
    options.expired ? '-1' : '2',
    '-extfile',
    extensions,
    '-out',
    cert.certFile,
  ]);
  return cert;
}
