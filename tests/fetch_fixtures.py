"""A local HTTP server (127.0.0.1 only) and the miniature datasets packed as their sources publish them.

`publish(root)` writes the miniatures of real_data_fixtures and returns {file name: bytes} in each source's
real format: tar.gz / tgz / zip archives with the published top folders, Caltech101's tar.gz nested in its
zip, Flowers' and Cars' loose .mat files, MNIST's .gz files. `Server` serves such files with HTTP Range
support, can drop a connection half-way through a file once, emulates the two Hugging Face Hub endpoints
the fetcher uses (dataset listing with LFS SHA-256, resolve URLs) and logs every request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

try:
    import real_data_fixtures as fx
except ImportError:  # tests/ became a package
    from tests import real_data_fixtures as fx

from cl_bench.benchmarks.real.sources import BASES, SOURCES, DatasetSources, HubSource, UrlSource


def _tar_gz(pairs) -> bytes:
    """pairs: (folder on disk, name in the archive)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for path, arcname in pairs:
            t.add(path, arcname)
    return buf.getvalue()


def _zip(pairs) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, arcname in pairs:
            if isinstance(path, bytes):
                z.writestr(arcname, path)
                continue
            for f in sorted(Path(path).rglob("*")):
                if f.is_file():
                    z.write(f, f"{arcname}/{f.relative_to(path).as_posix()}")
    return buf.getvalue()


def publish(root: Path) -> tuple[dict[str, bytes], dict]:
    """Miniatures under root/tree, packed; returns ({file name: bytes}, the miniatures' expected samples)."""
    tree = root / "tree"
    made = fx.make_all(tree)
    fx.make_mnist(tree / "mnist-gz", gz=True)
    t = tree
    out = {
        "fgvc-aircraft-2013b.tar.gz": _tar_gz([(t / "fgvc-aircraft-2013b", "fgvc-aircraft-2013b")]),
        "caltech-101.zip": _zip([
            (_tar_gz([(t / "caltech101" / "101_ObjectCategories", "101_ObjectCategories")]),
             "caltech-101/101_ObjectCategories.tar.gz"),
            (_tar_gz([]), "caltech-101/Annotations.tar"),
            (b"% MATLAB viewer\n", "caltech-101/show_annotation.m")]),
        "cifar-100-python.tar.gz": _tar_gz([(t / "cifar-100-python", "cifar-100-python")]),
        "dtd-r1.0.1.tar.gz": _tar_gz([(t / "dtd" / "dtd", "dtd")]),
        "EuroSAT.zip": _zip([(t / "eurosat" / "2750", "2750")]),
        "102flowers.tgz": _tar_gz([(t / "flowers-102" / "jpg", "jpg")]),
        "imagelabels.mat": (t / "flowers-102" / "imagelabels.mat").read_bytes(),
        "setid.mat": (t / "flowers-102" / "setid.mat").read_bytes(),
        "food-101.tar.gz": _tar_gz([(t / "food-101", "food-101")]),
        "images.tar.gz": _tar_gz([(t / "oxford-iiit-pet" / "images", "images")]),
        "annotations.tar.gz": _tar_gz([(t / "oxford-iiit-pet" / "annotations", "annotations")]),
        "car_devkit.tgz": _tar_gz([(t / "stanford_cars" / "devkit", "devkit")]),
        "cars_train.tgz": _tar_gz([(t / "stanford_cars" / "cars_train", "cars_train")]),
        "cars_test.tgz": _tar_gz([(t / "stanford_cars" / "cars_test", "cars_test")]),
        "cars_test_annos_withlabels.mat": (t / "stanford_cars" / "cars_test_annos_withlabels.mat").read_bytes(),
        "SUN397.tar.gz": _tar_gz([(t / "SUN397", "SUN397")]),
        "tiny-imagenet-200.zip": _zip([(t / "tiny-imagenet-200", "tiny-imagenet-200")]),
    }
    for f in (tree / "mnist-gz" / "MNIST" / "raw").iterdir():
        out[f.name] = f.read_bytes()
    return out, made


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def mini_sources(published: dict[str, bytes]) -> dict[str, DatasetSources]:
    """The real source table with the MD5s of the miniature files in place of the real ones."""
    out = {}
    for name, entry in SOURCES.items():
        chain = []
        for src in entry.chain:
            if isinstance(src, UrlSource):
                files = tuple(dataclasses.replace(f, md5=md5(published[f.name]) if f.md5 else None)
                              for f in src.files)  # files without a known checksum stay without one
                chain.append(dataclasses.replace(src, files=files))
            elif isinstance(src, HubSource):
                chain.append(dataclasses.replace(src, md5={k: md5(published[k]) for k in src.md5 if k in published}))
        out[name] = dataclasses.replace(entry, chain=tuple(chain))
    return out


def url_paths(sources: dict[str, DatasetSources], published: dict[str, bytes], datasets=None) -> dict[str, bytes]:
    """{server path: bytes} for every file of the URL sources of ``datasets`` (default: all)."""
    out = {}
    for name, entry in sources.items():
        if datasets is not None and name not in datasets:
            continue
        for src in entry.chain:
            if isinstance(src, UrlSource):
                for f in src.files:
                    out[f"/{f.base or src.base}/{f.path}"] = published[f.name]
    return out


class Server:
    """``files``: {path: bytes}; ``drop_once``: paths whose next GET stops half-way and closes the socket;
    ``log``: (method, path, Range header) per request; ``hub_files``: {repo: {file: bytes}} for /hf."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.drop_once: set[str] = set()
        self.hub_files: dict[str, dict[str, bytes]] = {}
        self.log: list[tuple[str, str, str | None]] = []
        self.sent = 0  # body bytes written
        self.honour_range = True  # False: answer every request with the whole file (200), as some servers do
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                server.log.append(("GET", path, self.headers.get("Range")))
                listing = server._hub_listing(path)
                if listing is not None:
                    body = json.dumps(listing).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = server._lookup(path)
                if data is None:
                    self.send_error(404)
                    return
                start = _range_start(self.headers.get("Range")) if server.honour_range else None
                if start is not None and start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = data[start or 0:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if path in server.drop_once:  # promise the whole body, send half, hang up
                    server.drop_once.discard(path)
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)
                server.sent += len(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def bases(self) -> dict[str, str]:
        return {key: f"{self.url}/{key}" for key in BASES}

    def _lookup(self, path: str) -> bytes | None:
        if path in self.files:
            return self.files[path]
        prefix = "/hf/datasets/"
        if path.startswith(prefix):  # /hf/datasets/<org>/<name>/resolve/<revision>/<file>
            parts = path[len(prefix):].split("/")
            repo, file = "/".join(parts[:2]), "/".join(parts[4:])
            return self.hub_files.get(repo, {}).get(file)
        return None

    def _hub_listing(self, path: str):
        prefix = "/hf/api/datasets/"
        if not path.startswith(prefix):
            return None
        parts = path[len(prefix):].split("/")  # <org>/<name>/revision/<revision>
        repo = "/".join(parts[:2])
        if repo not in self.hub_files:
            return None
        siblings = [{"rfilename": name, "size": len(data), "blobId": hashlib.sha1(data).hexdigest(),
                     "lfs": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}}
                    for name, data in self.hub_files[repo].items()]
        return {"id": repo, "sha": parts[3] if len(parts) > 3 else "0" * 40, "private": False, "siblings": siblings}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False


def _range_start(value: str | None) -> int | None:
    if not value or not value.startswith("bytes="):
        return None
    return int(value[6:].split("-")[0])


try:
    import pyarrow  # noqa: F401

    HAVE_PYARROW = True
except ImportError:
    HAVE_PYARROW = False


def cifar100_parquet(work: Path) -> dict[str, bytes]:
    """The CIFAR100 miniature as uoft-cs/cifar100 ships it: one parquet file per split, PNG bytes per image."""
    import pickle

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    fx.make_cifar100(work)
    out = {}
    for split in ("train", "test"):
        entry = pickle.loads((work / "cifar-100-python" / split).read_bytes())
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        pngs = []
        for k, image in enumerate(images):
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, "PNG")
            pngs.append({"bytes": buf.getvalue(), "path": f"{k}.png"})
        table = pa.table({"img": pngs, "fine_label": entry["fine_labels"], "coarse_label": entry["coarse_labels"]})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        out[f"cifar100/{split}-00000-of-00001.parquet"] = sink.getvalue()
    return out
