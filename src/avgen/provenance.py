"""Content credentials (C2PA) on the MP4s avgen writes, and what a file says about itself (`avgen inspect`).

Every MP4 that a pipeline's `.save()`, `avgen generate`, `foley`, `edit`, `batch` or the Space writes carries a
signed C2PA manifest, made and signed by the Content Authenticity Initiative's own library (c2pa-python; no
JUMBF is written here). The manifest states:
  - the action: `c2pa.created` with the IPTC digital source type `trainedAlgorithmicMedia` for a clip the models
    made; `c2pa.opened` (the user's video, a parent ingredient) then `c2pa.edited` with
    `compositeWithTrainedAlgorithmicMedia` for an edit or for sound made for the user's video (Foley);
  - the generator (avgen and its version, the claim generator and the action's software agent) and the model,
    its version and the pipeline, seed and steps in an `avgen.generation` assertion;
  - the prompt only when the user opts in (`include_prompt=True`, `--c2pa-prompt`); the MP4 tags keep it either way.

Signing credentials, first found wins:
  1. given: `credentials=Credentials.from_files(cert, key)` to `.save()`, `--c2pa-cert/--c2pa-key` to a command;
  2. the environment: AVGEN_C2PA_CERT and AVGEN_C2PA_KEY (PEM files: the certificate chain, signing certificate
     first, and its private key; AVGEN_C2PA_ALG and AVGEN_C2PA_TSA_URL optional);
  3. otherwise a local development certificate, made on first use in the user's cache folder
     (AVGEN_CACHE_DIR, else $XDG_CACHE_HOME/avgen, else ~/.cache/avgen; never in the repository). Its names say
     what it is ("avgen local development ... NOT a trusted identity"): readers report such a manifest as valid
     (the signature and the hashes check) but its signer as untrusted.
`credentials=None` (`--no-credentials`, or AVGEN_NO_CREDENTIALS=1) writes no manifest.

The muxer signs the finished temporary file into a second temporary file and renames only that one over the
target, so a signing failure leaves no file and an existing one intact.
"""

from __future__ import annotations

import argparse
import datetime
import json
import mimetypes
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import avgen
from avgen import atomic

ENV_CERT, ENV_KEY, ENV_ALG, ENV_TSA = "AVGEN_C2PA_CERT", "AVGEN_C2PA_KEY", "AVGEN_C2PA_ALG", "AVGEN_C2PA_TSA_URL"
ENV_OFF, ENV_CACHE = "AVGEN_NO_CREDENTIALS", "AVGEN_CACHE_DIR"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
CREATED, COMPOSITE = "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"
# pipelines whose output holds the user's video (re-encoded, copied or edited): edits of it, not creations
EDITING_PIPELINES = ("VideoEditPipeline", "VideoToAudioPipeline", "UpsamplePipeline")
PROMPT_KEYS = ("prompt", "negative_prompt", "audio_prompt", "audio_negative_prompt", "instruction")
ASSERTION = "avgen.generation"
DEV_ORGANIZATION = "avgen local development certificate - NOT a trusted identity"
DEV_FOLDER = "c2pa-development-credentials"
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")


class CredentialsError(ValueError):
    """Credentials that cannot sign (missing, unreadable, mismatched), or a signing that failed."""


@dataclass(frozen=True)
class Credentials:
    """What signs a manifest: a PEM certificate chain (the signing certificate first, then its issuers), its
    PEM private key, the algorithm ("es256", ... ; default: from the key) and an optional timestamp authority."""

    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    algorithm: str | None = None
    timestamp_url: str | None = None
    development: bool = False  # the local development certificate (untrusted by design)

    @classmethod
    def from_files(cls, certificate, key, algorithm: str | None = None, timestamp_url: str | None = None) -> Credentials:
        """From PEM files; checked (readable, matching, able to sign) before anything is made with them."""
        pems = []
        for what, path in (("certificate", certificate), ("private key", key)):
            try:
                pems.append(Path(path).read_bytes())
            except OSError as error:
                raise CredentialsError(f"cannot read the C2PA {what} {str(path)!r}: {error.strerror or error}") from None
        return cls(pems[0], pems[1], algorithm, timestamp_url).checked()

    def checked(self) -> Credentials:
        """These credentials with their algorithm filled in; CredentialsError if they cannot sign."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        try:
            chain = x509.load_pem_x509_certificates(self.certificate_chain)
        except ValueError:
            raise CredentialsError("the C2PA certificate is not a PEM certificate chain") from None
        try:
            key = serialization.load_pem_private_key(self.private_key, password=None)
        except (ValueError, TypeError) as error:  # TypeError: an encrypted key
            raise CredentialsError(f"the C2PA private key cannot be read (an unencrypted PEM key is needed): {error}") from None
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if chain[0].public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
            raise CredentialsError("the C2PA private key does not belong to the certificate (the chain's first one)")
        algorithm = self.algorithm
        if algorithm is None:
            if isinstance(key, ec.EllipticCurvePrivateKey):
                algorithm = {256: "es256", 384: "es384", 521: "es512"}.get(key.curve.key_size)
            else:
                algorithm = "ps256" if isinstance(key, rsa.RSAPrivateKey) else "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else None
            if algorithm is None:
                raise CredentialsError(f"no C2PA signing algorithm for a {type(key).__name__}; use an EC, RSA or Ed25519 key")
        if algorithm.lower() not in ALGORITHMS:
            raise CredentialsError(f"C2PA signing algorithm {algorithm!r} is not one of {ALGORITHMS}")
        checked = replace(self, algorithm=algorithm.lower())
        checked.signer().close()  # the library's own checks of the pair
        return checked

    def signer(self):
        import c2pa

        try:
            info = c2pa.C2paSignerInfo(self.algorithm or "es256", self.certificate_chain, self.private_key, self.timestamp_url)
            return c2pa.Signer.from_info(info)
        except c2pa.C2paError as error:
            raise CredentialsError(f"c2pa cannot sign with these credentials: {error}") from None


# --- the local development certificate ----------------------------------------------------------------------
def cache_dir() -> Path:
    """avgen's cache folder: AVGEN_CACHE_DIR, else $XDG_CACHE_HOME/avgen, else ~/.cache/avgen."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "avgen"


def development_credentials(folder: str | os.PathLike | None = None) -> Credentials:
    """The local development credentials in `folder` (default: cache_dir()/c2pa-development-credentials), made on
    first use: an ES256 signing certificate issued by a local CA, both named as untrusted development ones."""
    folder = Path(folder) if folder is not None else cache_dir() / DEV_FOLDER
    if not (folder / "key.pem").is_file():
        _make_development_credentials(folder)
    chain, key = (folder / "certificate.pem").read_bytes(), (folder / "key.pem").read_bytes()
    return Credentials(chain, key, "es256", None, development=True)


def _make_development_credentials(folder: Path) -> None:
    """Write certificate.pem (leaf + CA), key.pem (0600) and README.txt into a new folder, renamed into place
    whole: two processes making it at once end with one of the two pairs, never a mixed one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION)])

    def certificate(subject, issuer, public_key, signing_key, ca: bool, extra=()):
        usage = dict.fromkeys(("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only", "decipher_only"), False)
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=5 * 365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )  # fmt: skip
        for extension in extra:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate(name("avgen local development CA"), name("avgen local development CA"), ca_key.public_key(), ca_key, True)
    extra = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()))
    leaf = certificate(name("avgen local development signer"), ca.subject, key.public_key(), ca_key, False, extra)

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    staging.mkdir(mode=0o700)
    pem = serialization.Encoding.PEM
    (staging / "certificate.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_file = os.open(staging / "key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(key_file, "wb") as file:
        file.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (staging / "README.txt").write_text(
        "avgen's LOCAL DEVELOPMENT signing credentials for C2PA content credentials, made on first use.\n"
        "They are not a trusted identity: readers report manifests signed with them as valid but untrusted.\n"
        f"Sign with your own: {ENV_CERT}/{ENV_KEY} or --c2pa-cert/--c2pa-key. Never commit or share key.pem.\n"
    )
    atomic.fsync(staging)  # the files on the disk before the folder takes its name
    try:
        staging.rename(folder)  # not os.replace: a folder another process made first is kept
    except OSError:  # another process made it first: keep theirs
        for path in staging.iterdir():
            path.unlink()
        staging.rmdir()
    else:
        atomic.fsync(folder.parent)


def resolve_credentials(credentials="auto", certificate=None, key=None) -> Credentials | None:
    """The credentials to sign with: `credentials` itself when it is a Credentials; None for None or False (no
    manifest); for "auto", the `certificate` and `key` files, else the environment's, else the development ones."""
    if isinstance(credentials, Credentials):
        return credentials
    if credentials is None or credentials is False:
        return None
    if credentials != "auto":
        raise ValueError(f"credentials must be a Credentials, 'auto' or None; got {credentials!r}")
    if certificate is None and key is None:
        if os.environ.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no"):
            return None
        certificate, key = os.environ.get(ENV_CERT) or None, os.environ.get(ENV_KEY) or None
        if certificate is None and key is None:
            return development_credentials()
        names = (ENV_CERT, ENV_KEY)
    else:
        names = ("--c2pa-cert", "--c2pa-key")
    if certificate is None or key is None:
        raise CredentialsError(f"{names[0]} and {names[1]} go together: give both, the certificate chain and its key")
    return Credentials.from_files(certificate, key, os.environ.get(ENV_ALG) or None, os.environ.get(ENV_TSA) or None)


# --- the manifest --------------------------------------------------------------------------------------------
def describe(metadata: dict | None) -> tuple[str, str]:
    """(action, IPTC digital source type) of a clip from its metadata: an edit of the user's video for the editing
    pipelines, else a creation; `digital_source_type` in the metadata overrides the type (the world's demo renders)."""
    metadata = metadata or {}
    edited = metadata.get("pipeline") in EDITING_PIPELINES
    return ("c2pa.edited", COMPOSITE) if edited else ("c2pa.created", str(metadata.get("digital_source_type", CREATED)))


def _model_name(model) -> str:
    """A hub id ("owner/name") as given; of a local folder its name only, never the machine's path."""
    hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", str(model)) and not str(model).startswith(".") and not Path(model).exists()
    return str(model) if hub_id else Path(model).name


def manifest_definition(metadata: dict | None, title: str, include_prompt: bool = False, parent: str | None = None) -> dict:
    """The manifest of one clip; `parent` names the user's video an edit started from (default "source video")."""
    metadata = dict(metadata or {})
    action, source_type = describe(metadata)
    agent = {"name": "avgen", "version": avgen.__version__}
    details = {key: value for key, value in metadata.items() if key not in PROMPT_KEYS + ("digital_source_type",) or include_prompt}
    if "model" in details:
        details["model"] = _model_name(details["model"])
    details.setdefault("model_version", metadata.get("avgen_version", avgen.__version__))
    details = {key: value if isinstance(value, (bool, int, float)) or value is None else str(value) for key, value in details.items()}
    what = f"{details.get('pipeline', 'avgen')}" + (f", model {details['model']}" if "model" in details else "")
    actions = [{"action": action, "digitalSourceType": IPTC + source_type, "softwareAgent": agent, "description": f"made by avgen ({what})"}]
    definition = {
        "claim_generator_info": [agent],
        "title": title,
        "format": "video/mp4",
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}, {"label": ASSERTION, "data": details}],
    }
    if action == "c2pa.edited":  # the first action must open the parent: the user's video
        actions.insert(0, {"action": "c2pa.opened", "parameters": {"ingredientIds": ["source"]}})
        if parent is None:  # the writer has no file of it: the ingredient is named only
            definition["ingredients"] = [{"title": "source video", "format": "video/mp4", "relationship": "parentOf", "label": "source"}]
    return definition


def signing_step(
    metadata: dict | None, credentials="auto", include_prompt: bool = False, source: str | os.PathLike | None = None
) -> Callable[[Path, Path, str], None] | None:
    """The muxer's `sign(unsigned, signed, title)` step for one clip, or None without credentials. Credentials are resolved and checked
    here, before anything is written; `source` is the user's video an edit started from (its parent ingredient,
    with the manifest it may carry)."""
    credentials = resolve_credentials(credentials)
    if credentials is None:
        return None

    def sign(unsigned: Path, signed: Path, title: str) -> None:
        sign_file(unsigned, signed, title, metadata, credentials, include_prompt, source)

    return sign


def sign_file(unsigned, signed, title: str, metadata, credentials: Credentials, include_prompt: bool = False, source=None) -> None:
    """Write `signed`: `unsigned` (an MP4) with its C2PA manifest (claim title `title`) embedded, signed with `credentials`."""
    import c2pa

    parent = Path(source).name if source is not None else None
    definition = manifest_definition(metadata, title, include_prompt, parent)
    try:
        with c2pa.Builder(definition) as builder, credentials.signer() as signer:
            if source is not None:
                kind = mimetypes.guess_type(str(source))[0] or "video/mp4"
                with open(source, "rb") as stream:
                    builder.add_ingredient({"title": parent, "relationship": "parentOf", "label": "source"}, kind, stream)
            with open(unsigned, "rb") as stream, open(signed, "w+b") as target:
                builder.sign(signer, "video/mp4", stream, target)
    except c2pa.C2paError as error:
        raise CredentialsError(f"signing the C2PA manifest failed: {error}") from None


# --- the commands' flags ------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("content credentials (C2PA)")
    group.add_argument("--c2pa-cert", metavar="PEM", default=None, help=f"certificate chain to sign with (default: ${ENV_CERT}, else a local development one)")
    group.add_argument("--c2pa-key", metavar="PEM", default=None, help=f"its private key (default: ${ENV_KEY})")
    group.add_argument("--c2pa-prompt", action="store_true", help="put the prompt in the manifest too (default: only in the MP4 tags)")
    group.add_argument("--no-credentials", action="store_true", help="write no C2PA manifest")


def credentials_from_args(args: argparse.Namespace) -> Credentials | None:
    """The flags' credentials, resolved and checked (CredentialsError, a ValueError, naming the flag)."""
    if args.no_credentials:
        if args.c2pa_cert or args.c2pa_key:
            raise CredentialsError("--no-credentials and --c2pa-cert/--c2pa-key contradict each other")
        return None
    return resolve_credentials("auto", args.c2pa_cert, args.c2pa_key)


# --- reading ------------------------------------------------------------------------------------------------
def actions_of(manifest: dict | None) -> list[dict]:
    """A manifest's actions, as c2pa.Reader gives them: [{"action": "c2pa.created", "digitalSourceType": ...}, ...]."""
    assertions = (manifest or {}).get("assertions", [])
    return [action for item in assertions if item["label"].startswith("c2pa.actions") for action in item["data"].get("actions", [])]


def read_credentials(path: str | os.PathLike) -> dict | None:
    """The C2PA manifest store of a file as c2pa.Reader sees it: {"state": "Valid" / "Trusted" / "Invalid",
    "manifest": the active manifest, "store": the whole store, "failures": [validation failure codes]}, or None
    when the file has no manifest."""
    import c2pa

    with open(path, "rb") as stream:
        reader = c2pa.Reader.try_create(mimetypes.guess_type(str(path))[0] or "video/mp4", stream)
        if reader is None:
            return None
        with reader:
            store = json.loads(reader.json())
            results = reader.get_validation_results() or {}
            failures = [item["code"] for item in results.get("activeManifest", {}).get("failure", [])]
            return {"state": reader.get_validation_state(), "manifest": reader.get_active_manifest(), "store": store, "failures": failures}

