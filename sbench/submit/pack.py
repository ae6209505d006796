"""A results directory through a job's log: the fetch job's entrypoint on the cluster, and its decoding
on the submitting side.

`python -m sbench.submit.pack DIR` runs as a Ray job pinned to the node whose disk holds DIR (the run's
driver node, by its `node:<ip>` resource), packs DIR into a gzipped tar and prints it to the job's log as
base64 lines between two markers, with its SHA-256. The submitter reads that log through the job API (the
one address it already uses), checks the digest and unpacks with tarfile's `data` filter (no absolute
paths, no `..`, no links out). No shared file system is needed, and only Ray's dashboard port has to be
reachable.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

from sbench.errors import RunFailed

BEGIN = "SBENCH-PACK-BEGIN"
LINE = "SBENCH-PACK "
END = "SBENCH-PACK-END"
#: the fetch job's exit code when the directory does not exist (the run never wrote one)
NO_DIR = 3
#: base64 characters per log line (the log is read whole; shorter lines only cost markers)
CHUNK = 16384


def pack_dir(path: str) -> bytes:
    """`path` as a gzipped tar whose members are relative to it."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no results directory {root} on this node")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name)
    return buf.getvalue()


def emit(data: bytes, out=sys.stdout) -> None:
    """Print `data` as the marked base64 block that `decode` reads back."""
    text = base64.b64encode(data).decode()
    out.write(f"{BEGIN} {hashlib.sha256(data).hexdigest()} {len(data)}\n")
    for start in range(0, len(text), CHUNK):
        out.write(f"{LINE}{text[start : start + CHUNK]}\n")
    out.write(f"{END}\n")
    out.flush()


def decode(log: str) -> bytes:
    """The archive in a fetch job's log (RunFailed when it is missing, cut or corrupt)."""
    digest, size, parts, inside = "", -1, [], False
    for line in log.splitlines():
        if line.startswith(BEGIN):
            _, digest, size_text = line.split()
            size, parts, inside = int(size_text), [], True
        elif line.startswith(END) and inside:
            data = base64.b64decode("".join(parts))
            if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
                raise RunFailed("the results archive in the fetch job's log is corrupt (size or SHA-256)")
            return data
        elif inside and line.startswith(LINE):
            parts.append(line[len(LINE) :])
    raise RunFailed("the fetch job's log holds no complete results archive")


def unpack(data: bytes, dest: Path) -> list[str]:
    """Extract the archive into `dest` (created); returns the member names."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
        tar.extractall(dest, filter="data")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m sbench.submit.pack DIR", file=sys.stderr)
        return 2
    try:
        data = pack_dir(args[0])
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return NO_DIR
    except OSError as exc:
        print(f"error: cannot pack {args[0]}: {exc}", file=sys.stderr)
        return 1
    emit(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
