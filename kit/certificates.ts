/**
 * Certificates for tests of TLS on real servers, made with the openssl
 * command line as an operator would: a certificate authority, and a server
 * certificate it signs for the names a client will verify (verify-full checks
 * both the chain and the name).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertificateAuthority {
  /** PEM of the CA's certificate: what a client is given to trust (sslrootcert, tls.ca). */
  certFile: string;
  keyFile: string;
}

/** A server's certificate and key, and the certificate of the CA that signed it: the three files of cert-manager's Secret. */
export interface ServerCertificate {
  certFile: string;
  keyFile: string;
  /** What a client of this server trusts (NODE_EXTRA_CA_CERTS, nats.js tls.caFile), and a route peer too. */
  caFile: string;
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A fresh CA named `name`, in `dir` (a temp folder of its own unless given). */
export function makeCertificateAuthority(name: string, dir = mkdtempSync(join(tmpdir(), 'vm-ca-'))): CertificateAuthority {
  const ca = { certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') };
  openssl(['req', '-x509', ...EC_KEY, '-days', '2', '-subj', `/CN=${name}`, '-keyout', ca.keyFile, '-out', ca.certFile]);
  return ca;
}

/**
 * A server certificate signed by `ca` for `names` (IP addresses and DNS names), valid for two days, written into `dir`
 * as cert-manager's Secret holds it (tls.crt, tls.key, and the CA's ca.crt). `{ expired: true }` makes one whose
 * validity ended as it began, as a certificate nobody renewed; `{ clientAuth: true }` one a server may also present
 * as a client, as a NATS server does on its routes to the others.
 */
export function issueServerCertificate(
  ca: CertificateAuthority,
  dir: string,
  names: readonly string[],
  options: { expired?: boolean; clientAuth?: boolean } = {},
): ServerCertificate {
  const cert = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') };
  const request = join(dir, 'server.csr');
  const extensions = join(dir, 'server.ext');
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  writeFileSync(extensions, `subjectAltName=${san}\nextendedKeyUsage=serverAuth${options.clientAuth ? ',clientAuth' : ''}\n`);
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
  copyFileSync(ca.certFile, cert.caFile);
  return cert;
}

/** A server certificate for `names` from a CA of its own, both in `dir` (the server's files in its folder `server`). */
export function certificateWithOwnCa(caName: string, names: readonly string[], dir: string): ServerCertificate {
  const ca = makeCertificateAuthority(caName, dir);
  mkdirSync(join(dir, 'server'));
  return issueServerCertificate(ca, join(dir, 'server'), names);
}

let loopback: ServerCertificate | undefined;

/**
 * The certificate of the tests' servers on loopback (127.0.0.1 and localhost), from a CA of its own: made on first
 * use, once per test process, and removed when the process exits.
 */
export function loopbackCertificate(): ServerCertificate {
  if (!loopback) {
    const dir = mkdtempSync(join(tmpdir(), 'vm-ca-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    loopback = certificateWithOwnCa('video-mesh test CA', ['127.0.0.1', 'localhost'], dir);
  }
  return loopback;
}
