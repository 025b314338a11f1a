// Test certificates made with openssl: a CA and leaf certificates it signs, for loopback services.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

async function openssl(args: string[]): Promise<void> {
  await execFileAsync("openssl", args);
}

export interface CertificateAuthority {
  certFile: string;
  keyFile: string;
}

export async function makeCertificateAuthority(dir: string, name: string): Promise<CertificateAuthority> {
  const certFile = join(dir, `${name}-ca.crt`);
  const keyFile = join(dir, `${name}-ca.key`);
  await openssl(
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"].concat([
      "-subj",
      `/CN=${name} test CA`,
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ]),
  );
  return { certFile, keyFile };
}

export interface LeafCertificate {
  certFile: string;
  keyFile: string;
}

/**
 * A certificate signed by `ca` for the given subject alternative names (`IP:127.0.0.1`, `DNS:localhost`),
 * valid for `days` from now (a negative number makes one that has already expired).
 */
export async function makeLeafCertificate(
  ca: CertificateAuthority,
  dir: string,
  name: string,
  subjectAltNames: string[],
  usage: "serverAuth" | "clientAuth" | "serverAuth,clientAuth" = "serverAuth",
  days = 2,
): Promise<LeafCertificate> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `subjectAltName=${subjectAltNames.join(",")}\nextendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\n`);
  await openssl(
    ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
      "-subj",
      `/CN=${name}`,
      "-keyout",
      keyFile,
      "-out",
      csrFile,
    ]),
  );
  await openssl(
    ["x509", "-req", "-in", csrFile, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial"].concat([
      "-days",
      String(days),
      "-extfile",
      extFile,
      "-out",
      certFile,
    ]),
  );
  return { certFile, keyFile };
}

/** An RSA key pair (PEM), e.g. for service-account token signing. */
export async function makeRsaKeyPair(dir: string, name: string): Promise<{ privateKeyFile: string; publicKeyFile: string }> {
  const privateKeyFile = join(dir, `${name}.key`);
  const publicKeyFile = join(dir, `${name}.pub`);
  await openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", privateKeyFile]);
  await openssl(["pkey", "-in", privateKeyFile, "-pubout", "-out", publicKeyFile]);
  return { privateKeyFile, publicKeyFile };
}

/** A client certificate signed by `ca` whose subject is the Kubernetes user `commonName` in group `organization`. */
export async function makeClientCertificate(
  ca: CertificateAuthority,
  dir: string,
  name: string,
  subject: { commonName: string; organization: string },
): Promise<LeafCertificate> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
  const newKey = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl([...newKey, "-subj", `/O=${subject.organization}/CN=${subject.commonName}`, "-keyout", keyFile, "-out", csrFile]);
  const sign = ["x509", "-req", "-in", csrFile, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial", "-days", "2"];
  await openssl([...sign, "-extfile", extFile, "-out", certFile]);
  return { certFile, keyFile };
}
