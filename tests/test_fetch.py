"""`cl-bench data fetch` against a local server on 127.0.0.1 serving the miniature datasets in their published
formats: full fetch, fallback, checksum refusal, resumed downloads, the manual recipe; split indexes; the
pixel cache after a fetch. Nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import pytest
from rich.console import Console

from cl_bench.benchmarks.real import check_data
from cl_bench.benchmarks.real.download import DownloadError, download
from cl_bench.benchmarks.real.fetch import FETCH_DIR, build_pixel_cache, downloads_dir, fetch
from cl_bench.benchmarks.real.unpack import InstallError, extract
from cl_bench.cli import main

try:
    import fetch_fixtures as ff
except ImportError:  # tests/ became a package
    from tests import fetch_fixtures as ff

ALL = ["Aircraft", "Caltech101", "CIFAR100", "DTD", "EuroSAT", "Flowers", "Food", "MNIST", "OxfordPet",
       "StanfordCars", "SUN397", "TinyImageNet"]  # fmt: skip


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    files, made = ff.publish(tmp_path_factory.mktemp("published"))
    return files, made, ff.mini_sources(files)


@pytest.fixture
def server():
    with ff.Server() as s:
        yield s


def _console():
    buf = io.StringIO()
    return Console(file=buf, width=200), buf


def _leftovers(root):
    """Files that fetch may leave only on purpose (none after a success without --keep-downloads)."""
    return sorted(p.relative_to(root).as_posix() for p in (root / FETCH_DIR).rglob("*") if p.is_file())


def test_full_fetch_is_accepted_by_data_check(published, server, tmp_path):
    files, made, sources = published
    server.files = ff.url_paths(sources, files)
    root = tmp_path / "data"
    console, out = _console()
    results = fetch(ALL, root, sources=sources, bases=server.bases(), console=console)
    assert [(r.dataset, r.status) for r in results] == [(n, "fetched") for n in ALL], out.getvalue()
    rows = {r.dataset: r for r in check_data(ALL, root)}
    assert {r.status for r in rows.values()} == {"found"}
    for name, expected in made.items():  # every sample of every split arrived
        if "all" in expected:
            n = len(expected["all"])
            assert (rows[name].train, rows[name].test) == (int(0.8 * n), n - int(0.8 * n)), name
        else:
            assert (rows[name].train, rows[name].test) == (len(expected["train"]), len(expected["test"])), name
    assert _leftovers(root) == []  # archives removed, no .partial, no staging tree
    assert not (root / "caltech-101").exists() and not (root / ".caltech-101-zip").exists()

    before = len(server.log)  # a second run finds everything and downloads nothing
    again = fetch(ALL, root, sources=sources, bases=server.bases())
    assert {r.status for r in again} == {"present"} and len(server.log) == before


def test_dead_first_source_falls_back_to_the_second(published, server, tmp_path):
    files, _, sources = published
    # EuroSAT: the DFKI URL is gone, the Hugging Face copy answers (listing + resolve through the Hub API);
    # MNIST: yann.lecun.com is gone, torchvision's S3 mirror answers.
    server.files = {p: b for p, b in ff.url_paths(sources, files, ["MNIST"]).items() if p.startswith("/ossci/")}
    server.hub_files = {"torchgeo/eurosat": {"EuroSAT.zip": files["EuroSAT.zip"]}}
    root = tmp_path / "data"
    console, out = _console()
    results = fetch(["EuroSAT", "MNIST"], root, sources=sources, bases=server.bases(), console=console)
    assert [(r.status, r.source) for r in results] == [("fetched", "huggingface (torchgeo/eurosat)"),
                                                      ("fetched", "torchvision (ossci)")]
    assert "official (dfki) failed" in out.getvalue() and "HTTP 404" in out.getvalue()
    assert [r.status for r in check_data(["EuroSAT", "MNIST"], root)] == ["found", "found"]
    paths = [p for _, p, _ in server.log]
    assert paths.index("/dfki/EuroSAT.zip") < paths.index("/hf/api/datasets/torchgeo/eurosat/revision/"
                                                          "c877bcd43f099cd0196738f714544e355477f3fd")


def test_checksum_mismatch_is_refused(published, server, tmp_path):
    files, _, sources = published
    server.files = ff.url_paths(sources, files, ["DTD"])
    data = files["dtd-r1.0.1.tar.gz"]
    server.files["/vgg/data/dtd/download/dtd-r1.0.1.tar.gz"] = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
    root = tmp_path / "data"
    (result,) = fetch(["DTD"], root, sources=sources, bases=server.bases())
    assert result.status == "failed"
    assert "checksum mismatch for dtd-r1.0.1.tar.gz (md5" in result.message
    assert not (root / "dtd").exists() and _leftovers(root) == []  # nothing half-verified kept anywhere
    assert check_data(["DTD"], root)[0].status == "missing"


def test_interrupted_download_resumes(published, server, tmp_path):
    files, _, sources = published
    path = "/vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz"
    size = len(files["fgvc-aircraft-2013b.tar.gz"])
    server.files = ff.url_paths(sources, files, ["Aircraft"])
    server.drop_once = {path}
    root = tmp_path / "data"
    console, out = _console()
    (result,) = fetch(["Aircraft"], root, sources=sources, bases=server.bases(), console=console)
    assert result.status == "fetched"
    assert [r for _, p, r in server.log if p == path] == [None, f"bytes={size // 2}-"]
    assert server.sent == size  # the second request sent only the missing half
    assert f"fgvc-aircraft-2013b.tar.gz: got {size // 2:,} of {size:,} bytes; resuming" in out.getvalue()
    assert check_data(["Aircraft"], root)[0].status == "found"


def test_partial_file_from_an_earlier_run_is_resumed(published, server, tmp_path):
    files, _, sources = published
    data = files["cifar-100-python.tar.gz"]
    server.files = {"/f/cifar.tgz": data}
    dest = tmp_path / "dl" / "cifar.tgz"
    dest.parent.mkdir()
    (tmp_path / "dl" / "cifar.tgz.partial").write_bytes(data[:1000])
    download(f"{server.url}/f/cifar.tgz", dest, md5=ff.md5(data))
    assert dest.read_bytes() == data and not (tmp_path / "dl" / "cifar.tgz.partial").exists()
    assert server.log == [("GET", "/f/cifar.tgz", "bytes=1000-")] and server.sent == len(data) - 1000

    dest.unlink()  # a server that ignores Range: the partial file is rewritten from the start
    (tmp_path / "dl" / "cifar.tgz.partial").write_bytes(b"x" * 1000)
    server.honour_range = False
    download(f"{server.url}/f/cifar.tgz", dest, md5=ff.md5(data))
    assert dest.read_bytes() == data

    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.url}/f/none.tgz", tmp_path / "dl" / "none.tgz")
    assert not (tmp_path / "dl" / "none.tgz").exists()


def test_no_source_left_prints_the_manual_recipe(server, tmp_path, capsys):
    root = tmp_path / "data"
    code = main(["data", "fetch", "--dataset", "SUN397", "StanfordCars", "--data-root", str(root),
                 "--mirror", f"princeton={server.url}/gone", "--mirror", f"stanford-ai={server.url}/gone",
                 "--mirror", f"stanford-imagenet={server.url}/gone"])
    assert code == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    for name, expected in (("SUN397", f"{root}/SUN397/{{ClassName.txt"),
                           ("StanfordCars", f"{root}/stanford_cars/{{devkit/cars_meta.mat")):
        (line,) = [line for line in text.splitlines() if line.startswith(f"{name}: not fetched")]
        assert "HTTP 404" in line and "Manual: " in line and expected in line
        assert f"{root}/.cl-bench-fetch/downloads" in line  # where a hand-downloaded archive can go
    assert "data check: 0 of 2 datasets found" in text
    assert not (root / "SUN397").exists()


def test_a_file_put_in_downloads_by_hand_is_used(published, server, tmp_path):
    """The manual route for sources that are gone: drop the archive in the downloads folder and re-run."""
    files, _, sources = published
    root = tmp_path / "data"
    downloads_dir(root).mkdir(parents=True)
    (downloads_dir(root) / "SUN397.tar.gz").write_bytes(files["SUN397.tar.gz"])
    (result,) = fetch(["SUN397"], root, sources=sources, bases=server.bases())
    assert result.status == "fetched" and server.log == []
    assert check_data(["SUN397"], root)[0].status == "found"


def test_existing_wrong_folder_is_not_overwritten(published, server, tmp_path):
    files, _, sources = published
    server.files = ff.url_paths(sources, files, ["DTD"])
    root = tmp_path / "data"
    (root / "dtd").mkdir(parents=True)
    (root / "dtd" / "mine.txt").write_text("user data")
    (result,) = fetch(["DTD"], root, sources=sources, bases=server.bases())
    assert result.status == "blocked" and "move it away" in result.message
    assert (root / "dtd" / "mine.txt").read_text() == "user data" and server.log == []


def test_archive_escaping_its_folder_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../evil.txt", "x")
    (tmp_path / "bad.zip").write_bytes(buf.getvalue())
    with pytest.raises(InstallError, match="outside its folder"):
        extract(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_unpacked_tree_failing_data_check_is_not_installed(published, server, tmp_path):
    """An archive that unpacks but lacks the split lists (a wrong mirror) stays out of the data root."""
    files, _, sources = published
    bad = ff._tar_gz([])  # a valid, empty archive
    chain = sources["DTD"].chain[0]
    file = dataclasses.replace(chain.files[0], md5=ff.md5(bad))
    one = {"DTD": dataclasses.replace(sources["DTD"], chain=(dataclasses.replace(chain, files=(file,)),))}
    server.files = {"/vgg/data/dtd/download/dtd-r1.0.1.tar.gz": bad}
    root = tmp_path / "data"
    (result,) = fetch(["DTD"], root, sources=one, bases=server.bases())
    assert result.status == "failed"
    assert "the unpacked files fail data check (wrong layout: DTD data at" in result.message
    assert not (root / "dtd").exists()
    assert (downloads_dir(root) / "dtd-r1.0.1.tar.gz").is_file()  # verified by its MD5: kept for a re-run

    # Aircraft has no published checksum: an error page served as the archive is deleted, not reused
    server.files = {"/vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz": b"<html>moved</html>"}
    (result,) = fetch(["Aircraft"], root, sources=sources, bases=server.bases())
    assert result.status == "failed" and "neither a zip nor a tar archive" in result.message
    assert not (downloads_dir(root) / "fgvc-aircraft-2013b.tar.gz").exists()


def test_split_index_mismatch_is_reported(published, tmp_path, capsys):
    _, made, _ = published
    root = tmp_path / "data"
    ff.fx.make_eurosat(root, ff.fx.Palette())
    index_dir = tmp_path / "index"
    assert main(["data", "index", "--dataset", "EuroSAT", "--data-root", str(root), "--out", str(index_dir)]) == 0
    assert (index_dir / "EuroSAT.json").is_file()
    assert check_data(["EuroSAT"], root, index_dir=index_dir)[0].status == "found"

    extra = root / "eurosat" / "2750" / "Highway" / "Highway_99.jpg"
    ff.fx.write_jpeg(extra, (1, 2, 3))
    row = check_data(["EuroSAT"], root, index_dir=index_dir)[0]
    assert row.status == "wrong layout"
    assert "1 files not in the index (first: 2750/Highway/Highway_99.jpg)" in row.message
    extra.unlink()
    (root / "eurosat" / "2750" / "Highway" / "Highway_3.jpg").unlink()
    row = check_data(["EuroSAT"], root, index_dir=index_dir)[0]
    assert row.status == "wrong layout" and "1 indexed files absent (first: 2750/Highway/Highway_3.jpg)" in row.message
    assert check_data(["EuroSAT"], root, index_dir=tmp_path / "no-index")[0].status == "found"
    assert main(["data", "index", "--dataset", "DTD", "--data-root", str(root), "--out", str(index_dir)]) == 2


def test_preprocess_builds_the_pixel_cache(published, server, tmp_path, monkeypatch):
    files, _, sources = published
    server.files = ff.url_paths(sources, files, ["DTD"])
    root = tmp_path / "data"
    assert fetch(["DTD"], root, sources=sources, bases=server.bases())[0].status == "fetched"
    console, out = _console()
    total = build_pixel_cache("mtil", root, backbone="tiny-test", overrides={"tasks": ["DTD"]}, console=console)
    # 6 train + 6 test images of 32x32x3 bytes, in two .npy files with a 128-byte header each
    assert total == 2 * (6 * 32 * 32 * 3 + 128)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("pixel cache: up to 12 images at 32x32 px = 0.00 GiB in ")
    assert lines[-1] == "pixel cache built: 2 files, 0.00 GiB"


@pytest.mark.skipif(not ff.HAVE_PYARROW, reason="pyarrow is not installed: parquet mirrors are skipped")
def test_parquet_mirror_is_converted(published, server, tmp_path):
    files, made, sources = published
    server.hub_files = {"uoft-cs/cifar100": ff.cifar100_parquet(tmp_path / "pq")}
    root = tmp_path / "data"
    (result,) = fetch(["CIFAR100"], root, sources=sources, bases=server.bases())
    assert result.status == "fetched" and result.source == "huggingface (uoft-cs/cifar100)"
    from cl_bench.benchmarks.real import load_mtil_split

    for split in ("train", "test"):
        ds = load_mtil_split("CIFAR100", root, split)
        got = [(t, tuple(int(v) for v in ds.items[i][0, 0])) for i, t in enumerate(ds.targets)]
        assert got == made["CIFAR100"][split]


@pytest.mark.skipif(ff.HAVE_PYARROW, reason="pyarrow is installed: the parquet mirror is tried")
def test_parquet_source_is_skipped_without_pyarrow(published, server, tmp_path):
    _, _, sources = published
    (result,) = fetch(["CIFAR100"], tmp_path / "data", sources=sources, bases=server.bases())
    assert result.status == "failed"
    assert "huggingface (uoft-cs/cifar100): needs the pyarrow package (pip install pyarrow)" in result.message


def test_fetch_command_line_errors(tmp_path, capsys):
    root = str(tmp_path / "data")
    assert main(["data", "fetch", "--dataset", "DTD", "--data-root", root, "--preprocess"]) == 2
    assert main(["data", "fetch", "--dataset", "Imagenette", "--data-root", root]) == 2
    assert main(["data", "fetch", "--dataset", "DTD", "--data-root", root, "--mirror", "nowhere=http://x"]) == 2
    err = capsys.readouterr().err
    assert "give --scenario instead of --dataset" in err and "unknown dataset 'Imagenette'" in err
    assert "--mirror 'nowhere=http://x': use KEY=URL with KEY one of vgg, caltech" in err
