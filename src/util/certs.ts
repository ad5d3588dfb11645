/**
 * The mesh's certificates: a mesh CA, server certificates for each cluster's
 * clustermesh-apiserver etcd, and client certificates whose common name is
 * the etcd user (etcd maps a verified client certificate's CN to a user when
 * auth is on). All keys are ECDSA P-256, made with WebCrypto through
 * @peculiar/x509 (no OpenSSL binary); verification uses node:crypto's X509Certificate.
 *
 * Client common names (and so etcd users):
 *   root                 the cluster's own syncer and kvstoremesh (etcd's root user)
 *   local-agent          the cluster's agents and operator: read cilium/
 *   remote-<cluster>     a remote cluster's kvstoremesh: read cilium/state/, cluster-config, synced, heartbeat
 *
 * Every cluster has its own mesh CA (made on its first `clustermesh enable`,
 * kept in its state dir's pki/, never copied to another cluster); keys are
 * written with mode 0600 in 0700 directories.
 */
import { X509Certificate as NodeX509, webcrypto, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { TendrilError } from './errors.js';
import { writeFileAtomic } from './atomic-write.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
x509.cryptoProvider.set(crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG: webcrypto.EcKeyGenParams & webcrypto.EcdsaParams = {
  name: 'ECDSA',
  namedCurve: 'P-256',
  hash: 'SHA-256',
};

/** Error codes: CERT_INVALID (unparsable/wrong purpose), CERT_EXPIRED, CERT_NOT_YET_VALID, CERT_CA_MISMATCH, CERT_NAME_MISMATCH, CERT_KEY_MISMATCH. */
export type CertificateErrorCode =
  | 'CERT_INVALID'
  | 'CERT_EXPIRED'
  | 'CERT_NOT_YET_VALID'
  | 'CERT_CA_MISMATCH'
  | 'CERT_NAME_MISMATCH'
  | 'CERT_KEY_MISMATCH';

/** A certificate problem, with the next step in `hint`. */
export class CertificateError extends TendrilError {
  declare readonly code: CertificateErrorCode;
  constructor(
    code: CertificateErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = 'CertificateError';
  }
}

/** A PEM certificate and its PEM (PKCS#8) private key. */
export interface KeyPairPEM {
  certPEM: string;
  keyPEM: string;
}

/** A certificate authority that can sign. */
export interface CertificateAuthority extends KeyPairPEM {
  /** SHA-256 fingerprint of the CA certificate, "AB:CD:...". */
  fingerprint: string;
  subject: string;
  notAfter: Date;
  /** @internal the signing key */
  signingKey: CryptoKey;
}

/** What a certificate says about itself. */
export interface CertificateInfo {
  subject: string;
  commonName: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 fingerprint "AB:CD:...". */
  fingerprint: string;
  dnsNames: string[];
  ipAddresses: string[];
  isCA: boolean;
}

export interface CertOptions {
  /** Validity in days (default: CA 3650, others 1095). */
  validDays?: number;
  /** Start of validity (default: now minus 5 minutes, for clock skew). */
  notBefore?: Date;
}

function pemEncode(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function pemDecode(pem: string, label: string): Buffer {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`);
  const m = re.exec(pem);
  if (!m) throw new CertificateError('CERT_INVALID', `not a PEM ${label}`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

function validity(options: CertOptions, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const notBefore = options.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const days = options.validDays ?? defaultDays;
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * 86_400_000) };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  return b.toString('hex');
}

async function exportKey(key: CryptoKey): Promise<string> {
  return pemEncode('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', key));
}

async function importSigningKey(keyPEM: string): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey('pkcs8', pemDecode(keyPEM, 'PRIVATE KEY'), ALG, true, [
      'sign',
    ]);
  } catch (err) {
    if (err instanceof CertificateError) throw err;
    throw new CertificateError(
      'CERT_INVALID',
      `cannot read the private key (expected an ECDSA P-256 PKCS#8 key): ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

function parse(certPEM: string, what = 'certificate'): NodeX509 {
  try {
    return new NodeX509(certPEM);
  } catch (err) {
    throw new CertificateError(
      'CERT_INVALID',
      `${what} is not a valid PEM certificate: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Reads the fields of a PEM certificate. Throws CertificateError(CERT_INVALID) if it does not parse. */
export function certificateInfo(certPEM: string): CertificateInfo {
  const c = parse(certPEM);
  const san = c.subjectAltName ?? '';
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const part of san.split(/,\s*/)) {
    if (part.startsWith('DNS:')) dnsNames.push(part.slice(4));
    else if (part.startsWith('IP Address:')) ipAddresses.push(part.slice(11));
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(c.subject)?.[1] ?? '';
  return {
    subject: c.subject.replace(/\n/g, ', '),
    commonName: cn,
    issuer: c.issuer.replace(/\n/g, ', '),
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    fingerprint: c.fingerprint256,
    dnsNames,
    ipAddresses,
    isCA: c.ca,
  };
}

/** SHA-256 fingerprint of a PEM certificate ("AB:CD:..."). */
export function fingerprint(certPEM: string): string {
  return parse(certPEM).fingerprint256;
}

/** Makes a new self-signed CA (ECDSA P-256). */
export async function createCA(
  options: CertOptions & { commonName?: string } = {},
): Promise<CertificateAuthority> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const { notBefore, notAfter } = validity(options, 3650);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${options.commonName ?? 'Tendril Cluster Mesh CA'}, O=Tendril`,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign |
          x509.KeyUsageFlags.cRLSign |
          x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPEM = cert.toString('pem') + '\n';
  return {
    certPEM,
    keyPEM: await exportKey(keys.privateKey),
    fingerprint: fingerprint(certPEM),
    subject: cert.subject,
    notAfter,
    signingKey: keys.privateKey,
  };
}

/** Loads a CA from PEM; checks the certificate is a CA and the key belongs to it. Throws CertificateError. */
export async function loadCA(certPEM: string, keyPEM: string): Promise<CertificateAuthority> {
  const c = parse(certPEM, 'CA certificate');
  if (!c.ca)
    throw new CertificateError(
      'CERT_INVALID',
      `certificate ${c.subject.replace(/\n/g, ', ')} is not a CA`,
    );
  const signingKey = await importSigningKey(keyPEM);
  // The key must match: sign a probe and verify with the certificate's public key.
  const probe = Buffer.from('tendril-ca-probe');
  const sig = await crypto.subtle.sign(ALG, signingKey, probe);
  const pub = await crypto.subtle.importKey(
    'spki',
    c.publicKey.export({ type: 'spki', format: 'der' }),
    ALG,
    false,
    ['verify'],
  );
  if (!(await crypto.subtle.verify(ALG, pub, sig, probe))) {
    throw new CertificateError(
      'CERT_KEY_MISMATCH',
      'the CA private key does not belong to the CA certificate',
      {
        hint: 'restore the matching ca.key, or move both files away to make a new CA (and re-enable the mesh on every cluster)',
      },
    );
  }
  return {
    certPEM,
    keyPEM,
    fingerprint: c.fingerprint256,
    subject: c.subject.replace(/\n/g, ', '),
    notAfter: new Date(c.validTo),
    signingKey,
  };
}

/** Writes a file atomically and durably (util/atomic-write); keys get mode 0600, new directories 0700. */
export async function writeSecretFile(path: string, data: string, mode = 0o600): Promise<void> {
  await writeFileAtomic(path, data, { mode, dirMode: 0o700 });
}

/**
 * Loads a CA from `dir` (files `ca.crt`/`ca.key`, or the names in `files`),
 * or makes and stores one if there is none (key 0600, directory 0700).
 * Throws CertificateError if the stored CA is unreadable or its key does not
 * match (it never silently replaces a CA).
 */
export async function loadOrCreateMeshCA(
  dir: string,
  files: { cert: string; key: string } = { cert: 'ca.crt', key: 'ca.key' },
  options: { commonName?: string } = {},
): Promise<{ ca: CertificateAuthority; created: boolean }> {
  const certPath = join(dir, files.cert);
  const keyPath = join(dir, files.key);
  let certPEM: string | undefined;
  let keyPEM: string | undefined;
  try {
    certPEM = await readFile(certPath, 'utf8');
    keyPEM = await readFile(keyPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (certPEM !== undefined) {
      throw new CertificateError(
        'CERT_INVALID',
        `mesh CA certificate ${certPath} exists but its key ${keyPath} is missing`,
        {
          hint: `restore ${keyPath}, or remove ${certPath} to make a new CA`,
        },
      );
    }
  }
  if (certPEM !== undefined && keyPEM !== undefined) {
    return { ca: await loadCA(certPEM, keyPEM), created: false };
  }
  const ca = await createCA(options);
  await writeSecretFile(keyPath, ca.keyPEM);
  await writeSecretFile(certPath, ca.certPEM, 0o644);
  return { ca, created: true };
}

export interface ServerCertOptions extends CertOptions {
  commonName?: string;
  /** IP SANs (the access endpoints' addresses; 127.0.0.1 is always added). */
  ips?: string[];
  /** DNS SANs (localhost and clustermesh-apiserver.kube-system.svc are always added). */
  dnsNames?: string[];
}

/** Default DNS names of a clustermesh-apiserver's server certificate. */
export const SERVER_DNS_NAMES = [
  'localhost',
  'clustermesh-apiserver.kube-system.svc',
  '*.mesh.cilium.io',
];

async function issue(
  ca: CertificateAuthority,
  commonName: string,
  usages: string[],
  sans: x509.JsonGeneralName[],
  options: CertOptions,
): Promise<KeyPairPEM> {
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const { notBefore, notAfter } = validity(options, 1095);
  const caCert = new x509.X509Certificate(ca.certPEM);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${commonName}`,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    extensions,
  });
  return { certPEM: cert.toString('pem') + '\n', keyPEM: await exportKey(keys.privateKey) };
}

/**
 * Issues the server certificate of a cluster's clustermesh-apiserver etcd:
 * SANs are the access IPs plus 127.0.0.1, localhost and
 * clustermesh-apiserver.kube-system.svc. It also allows client auth (etcd's
 * gateway dials itself with it).
 */
export async function issueServerCert(
  ca: CertificateAuthority,
  options: ServerCertOptions = {},
): Promise<KeyPairPEM> {
  const ips = [...new Set(['127.0.0.1', ...(options.ips ?? [])])];
  for (const ip of ips) {
    if (!isIP(ip))
      throw new CertificateError(
        'CERT_INVALID',
        `"${ip}" is not an IP address for the server certificate`,
      );
  }
  const dns = [...new Set([...SERVER_DNS_NAMES, ...(options.dnsNames ?? [])])];
  const sans: x509.JsonGeneralName[] = [
    ...dns.map((value) => ({ type: 'dns' as const, value })),
    ...ips.map((value) => ({ type: 'ip' as const, value })),
  ];
  return issue(
    ca,
    options.commonName ?? 'clustermesh-apiserver',
    [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    sans,
    options,
  );
}

/** Issues a client certificate; its CN is the etcd user name (root, local-agent, remote-<cluster>). */
export async function issueClientCert(
  ca: CertificateAuthority,
  commonName: string,
  options: CertOptions = {},
): Promise<KeyPairPEM> {
  if (!/^[A-Za-z0-9][-A-Za-z0-9_.]*$/.test(commonName)) {
    throw new CertificateError('CERT_INVALID', `"${commonName}" is not a valid client common name`);
  }
  return issue(ca, commonName, [x509.ExtendedKeyUsage.clientAuth], [], options);
}

/** The client CN a remote cluster uses to read this cluster's etcd. */
export function remoteClientCN(cluster: string): string {
  return `remote-${cluster}`;
}

export interface VerifyOptions {
  /** Whose certificate this is, for messages ("cluster2", "the local agent"). */
  owner?: string;
  /** Expected use. */
  purpose?: 'server' | 'client';
  /** Server certificates: an address or name the certificate must cover. */
  host?: string;
  /** Client certificates: the expected common name. */
  commonName?: string;
  /** Check validity at this time (default now). */
  at?: Date;
}

/**
 * Verifies a certificate against a CA: signature, validity period, and
 * optionally the host it must cover or the CN it must carry. Returns its info.
 * Throws CertificateError with a message naming the owner and the next step:
 * CERT_CA_MISMATCH ("signed by a different CA (fingerprint ...)"),
 * CERT_EXPIRED, CERT_NOT_YET_VALID, CERT_NAME_MISMATCH, CERT_INVALID.
 */
export function verifyCertificate(
  certPEM: string,
  caPEM: string,
  options: VerifyOptions = {},
): CertificateInfo {
  const owner = options.owner ? `certificate for ${options.owner}` : 'certificate';
  const c = parse(certPEM, owner);
  const ca = parse(caPEM, 'CA certificate');
  const info = certificateInfo(certPEM);
  if (!c.checkIssued(ca) || !c.verify(ca.publicKey)) {
    throw new CertificateError(
      'CERT_CA_MISMATCH',
      `${owner} was signed by a different CA (issuer "${info.issuer}", expected CA "${ca.subject.replace(/\n/g, ', ')}" with fingerprint ${ca.fingerprint256})`,
      {
        hint: "every cluster has its own CA and `tendril clustermesh connect` hands out certificates signed by the destination's CA: re-run connect to re-issue them",
      },
    );
  }
  const at = options.at ?? new Date();
  if (at < info.notBefore) {
    throw new CertificateError(
      'CERT_NOT_YET_VALID',
      `${owner} is not valid before ${info.notBefore.toISOString()} (now ${at.toISOString()})`,
      {
        hint: "check the machine's clock",
      },
    );
  }
  if (at > info.notAfter) {
    throw new CertificateError(
      'CERT_EXPIRED',
      `${owner} expired on ${info.notAfter.toISOString()}`,
      {
        hint: 're-issue it: `tendril clustermesh disable` then `tendril clustermesh enable` on that cluster, then connect again',
      },
    );
  }
  if (options.purpose === 'server' && options.host !== undefined) {
    const ok = isIP(options.host)
      ? c.checkIP(options.host) !== undefined
      : c.checkHost(options.host) !== undefined;
    if (!ok) {
      throw new CertificateError(
        'CERT_NAME_MISMATCH',
        `${owner} does not cover ${options.host} (it covers ${[...info.dnsNames, ...info.ipAddresses].join(', ') || 'nothing'})`,
        {
          hint: 're-run `tendril clustermesh enable` on that cluster so its server certificate lists its current access address',
        },
      );
    }
  }
  if (
    options.purpose === 'client' &&
    options.commonName !== undefined &&
    info.commonName !== options.commonName
  ) {
    throw new CertificateError(
      'CERT_NAME_MISMATCH',
      `${owner} is for "${info.commonName}", expected "${options.commonName}"`,
      {
        hint: 'reconnect with `tendril clustermesh connect` to issue the right client certificate',
      },
    );
  }
  return info;
}

/** Why a TLS connection failed, in the words status prints. */
export type TLSFailure =
  'certificate-rejected' | 'certificate-expired' | 'unknown-ca' | 'name-mismatch' | undefined;

/**
 * Classifies a TLS error (Node's or etcd/grpc's message) so status can say
 * "certificate rejected" rather than a raw OpenSSL string; undefined if it is
 * not a TLS problem.
 */
export function classifyTLSError(err: unknown): TLSFailure {
  const parts: string[] = [];
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    parts.push(String((e as { code?: unknown }).code ?? ''), String((e as Error).message ?? e));
  }
  const s = parts.join(' ');
  if (
    /CERT_HAS_EXPIRED|certificate has expired|expired certificate|ALERT_CERTIFICATE_EXPIRED/i.test(
      s,
    )
  )
    return 'certificate-expired';
  if (/ERR_TLS_CERT_ALTNAME_INVALID|Hostname\/IP does not match|altnames/i.test(s))
    return 'name-mismatch';
  if (
    /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT|unknown ca|certificate signature failure/i.test(
      s,
    )
  ) {
    return 'unknown-ca';
  }
  if (
    /bad certificate|certificate required|ALERT_BAD_CERTIFICATE|CERTIFICATE_REQUIRED|handshake failure|KVSTORE_TLS/i.test(
      s,
    )
  ) {
    return 'certificate-rejected';
  }
  return undefined;
}
