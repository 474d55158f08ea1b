//! Keys and certificates made with the `openssl` command: a CA and a server certificate for TLS,
//! and the token server's signing key (its libtrust key id and certificate for `x5c`).

use crate::util::{base32, base64, openssl};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A CA and a server certificate signed by it (SAN IP:127.0.0.1, DNS:localhost).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA certificate (PEM).
    pub ca_pem: PathBuf,
    /// The server certificate (PEM) and its key.
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    /// A directory holding only `ca.crt`: the certs.d layout podman, skopeo and docker read.
    pub cert_dir: PathBuf,
}

/// Make a CA and a server certificate in `dir` (EC P-256 keys, valid for 2 days).
pub fn make_tls(dir: &Path) -> TlsFiles {
    std::fs::create_dir_all(dir).expect("create tls dir");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=testreg test CA"]);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
    openssl(dir, &csr);
    let ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
               extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
    std::fs::write(dir.join("server.ext"), ext).expect("write server.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    let cert_dir = dir.join("certs.d");
    std::fs::create_dir_all(&cert_dir).expect("create certs.d");
    std::fs::copy(dir.join("ca.pem"), cert_dir.join("ca.crt")).expect("copy ca.crt");
    TlsFiles {
        ca_pem: dir.join("ca.pem"),
        cert_pem: dir.join("server.pem"),
        key_pem: dir.join("server.key"),
        cert_dir,
    }
}

/// The token server's RSA key with a self-signed certificate (the registry's `rootcertbundle`).
#[derive(Clone, Debug)]
pub struct SigningKey {
    pub key_pem: PathBuf,
    pub cert_pem: PathBuf,
    /// libtrust key id of the public key: what distribution matches the JWT header `kid` against.
    pub kid: String,
    /// The certificate, DER in standard base64: the one element of a JWT header `x5c` chain.
    pub cert_b64: String,
}

/// Make the token signing key and certificate in `dir`.
pub fn make_signing_key(dir: &Path) -> SigningKey {
    std::fs::create_dir_all(dir).expect("create token key dir");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "token.key",
            "-out",
            "token.pem",
            "-days",
            "2",
            "-subj",
            "/CN=testreg token signer",
        ],
    );
    let spki = openssl(dir, &["pkey", "-in", "token.key", "-pubout", "-outform", "DER"]);
    let cert_der = openssl(dir, &["x509", "-in", "token.pem", "-outform", "DER"]);
    SigningKey {
        key_pem: dir.join("token.key"),
        cert_pem: dir.join("token.pem"),
        kid: libtrust_key_id(&spki),
        cert_b64: base64(&cert_der),
    }
}

/// libtrust's key id: base32 of the first 240 bits of sha256(DER SubjectPublicKeyInfo), in 12
/// groups of 4 characters joined by ':'.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let b32 = base32(&Sha256::digest(spki_der)[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join(":")
}

/// RS256 signature (PKCS#1 v1.5 over sha256) of `data` with the PEM key at `key`.
pub fn sign_rs256(key: &Path, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl dgst");
    child.stdin.take().expect("stdin").write_all(data).expect("write to openssl");
    let out = child.wait_with_output().expect("wait openssl");
    assert!(out.status.success(), "openssl dgst -sign failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_shape() {
        let kid = libtrust_key_id(b"anything");
        assert_eq!(kid.len(), 12 * 4 + 11);
        assert_eq!(kid.split(':').count(), 12);
        assert!(kid.split(':').all(|g| g.len() == 4));
    }
}
