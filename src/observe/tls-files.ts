/**
 * Reads the certificate files of Hubble's mutual TLS (a node's observer on
 * :4244, a relay on :4245, a relay dialling another cluster's relay) and
 * checks them before any socket is opened, so a bad file is reported as
 * "this file, this problem, this fix" instead of a handshake failure later.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { CertificateError, verifyCertificate } from '../util/certs.js';
import { TendrilError } from '../util/errors.js';
import type { MutualTLS } from './server.js';

/** The three files of one side of a mutual TLS connection. */
export interface MutualTLSFiles {
  /** The CA the peer's certificate must chain to (and this side's own does). */
  caFile: string;
  /** This side's certificate. */
  certFile: string;
  /** Its private key. */
  keyFile: string;
}

/** A Hubble certificate file that cannot be used. */
export class HubbleTLSFileError extends TendrilError {
  /** The file at fault. */
  readonly file: string;
  constructor(file: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('HUBBLE_TLS_FILE', message, options);
    this.name = 'HubbleTLSFileError';
    this.file = file;
  }
}

function read(file: string, what: string, fix: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new HubbleTLSFileError(
      file,
      `hubble: cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      { hint: fix, cause: err },
    );
  }
}

/**
 * Reads and checks CA, certificate and key: each file parses, the key belongs
 * to the certificate, the certificate chains to the CA and is valid now.
 * `fix` is the next step the error's hint names (e.g. "re-run `tendril
 * install`: it re-issues the Hubble certificates").
 * @throws HubbleTLSFileError (code HUBBLE_TLS_FILE) naming the file at fault.
 */
export function readMutualTLSFiles(files: MutualTLSFiles, fix: string): MutualTLS {
  const ca = read(files.caFile, 'the CA certificate', fix);
  const cert = read(files.certFile, 'the certificate', fix);
  const key = read(files.keyFile, 'the private key', fix);
  try {
    new X509Certificate(ca);
  } catch (err) {
    throw new HubbleTLSFileError(files.caFile, `hubble: ${files.caFile} is not a PEM certificate`, {
      hint: fix,
      cause: err,
    });
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new HubbleTLSFileError(
      files.certFile,
      `hubble: ${files.certFile} is not a PEM certificate`,
      { hint: fix, cause: err },
    );
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new HubbleTLSFileError(
      files.keyFile,
      `hubble: ${files.keyFile} is not a PEM private key`,
      {
        hint: fix,
        cause: err,
      },
    );
  }
  if (!x509.checkPrivateKey(privateKey))
    throw new HubbleTLSFileError(
      files.keyFile,
      `hubble: the key ${files.keyFile} does not belong to the certificate ${files.certFile}`,
      { hint: fix },
    );
  try {
    verifyCertificate(cert, ca, { owner: files.certFile });
  } catch (err) {
    const why = err instanceof CertificateError ? err.message : String(err);
    throw new HubbleTLSFileError(files.certFile, `hubble: ${why} (CA file ${files.caFile})`, {
      hint: fix,
      cause: err,
    });
  }
  return { ca, cert, key };
}
