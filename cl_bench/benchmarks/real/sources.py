"""Where each real dataset can be downloaded from: an ordered chain of sources per dataset, tried in turn by
`cl-bench data fetch` (docs/data-fetch.md), and the manual recipe printed when every source fails.

URLs are written as (base key, path) so that a mirror, or the tests' local server, replaces a host without
touching the table (``fetch(..., bases={"vgg": "http://127.0.0.1:8000/vgg"})``). Checksums are the ones
torchvision's dataset classes verify; Hugging Face sources get a SHA-256 per file from the Hub's listing.
No entry could be checked from the machine this table was written on (no internet): every one carries
``verified=False`` until someone fetches it for real and flips the flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BASES = {
    "vgg": "https://www.robots.ox.ac.uk/~vgg",
    "caltech": "https://data.caltech.edu",
    "toronto": "https://www.cs.toronto.edu/~kriz",
    "dfki": "https://madm.dfki.de/files/sentinel",
    "ethz": "http://data.vision.ee.ethz.ch/cvl",
    "lecun": "http://yann.lecun.com/exdb/mnist",
    "ossci": "https://ossci-datasets.s3.amazonaws.com/mnist",
    "stanford-ai": "https://ai.stanford.edu/~jkrause/cars",
    "stanford-imagenet": "http://imagenet.stanford.edu/internal/car196",
    "princeton": "http://vision.princeton.edu/projects/2010/SUN",
    "cs231n": "http://cs231n.stanford.edu",
    "hf": "https://huggingface.co",  # a Hub endpoint (API + resolve URLs), not a plain folder
}


@dataclass(frozen=True)
class File:
    name: str  # file name in the downloads folder
    path: str  # below the base URL
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None  # approximate bytes, for the progress bar and the docs
    base: str | None = None  # a base key other than the source's (files spread over two hosts)


@dataclass(frozen=True)
class Unpack:
    """Extract archive ``src`` into ``into`` (relative to the staging tree). ``src`` names a downloaded file,
    or ``tree:<path>`` an archive that an earlier step extracted (Caltech101 nests a tar.gz in its zip)."""

    src: str
    into: str = ""


@dataclass(frozen=True)
class Place:
    """Copy downloaded file ``src`` to ``dest`` in the staging tree, unchanged."""

    src: str
    dest: str


@dataclass(frozen=True)
class Convert:
    """Run converter ``name`` (see unpack.CONVERTERS) on the downloaded files, e.g. parquet -> pickles."""

    name: str


@dataclass(frozen=True)
class UrlSource:
    kind: str  # "official" or "torchvision" (the URL torchvision's downloader uses)
    base: str  # key of BASES
    files: tuple[File, ...]
    steps: tuple
    verified: bool = False
    note: str = ""

    def describe(self) -> str:
        return f"{self.kind} ({self.base})"


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face dataset repository, listed and downloaded through huggingface_hub's API (optional)."""

    repo: str
    revision: str
    patterns: tuple[str, ...]  # fnmatch patterns of the repo files to fetch; each must match at least one
    steps: tuple
    needs: tuple[str, ...] = ()  # importable modules the steps need (the source is skipped without them)
    md5: dict = field(default_factory=dict)  # file name -> md5 where known besides the Hub's SHA-256
    verified: bool = False
    note: str = ""
    kind: str = "huggingface"
    base: str = "hf"

    def describe(self) -> str:
        return f"huggingface ({self.repo})"


@dataclass(frozen=True)
class DatasetSources:
    chain: tuple  # UrlSource | HubSource, in the order tried
    manual: str  # where to get the files by hand; "{root}" is the data root


def _vgg(*files: File, steps) -> UrlSource:
    return UrlSource("official", "vgg", tuple(files), tuple(steps))


SOURCES: dict[str, DatasetSources] = {
    "Aircraft": DatasetSources(
        (_vgg(File("fgvc-aircraft-2013b.tar.gz", "data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
                   size=2_800_000_000), steps=[Unpack("fgvc-aircraft-2013b.tar.gz")]),),
        "download fgvc-aircraft-2013b.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ and "
        "unpack it in {root}"),
    "Caltech101": DatasetSources(
        (UrlSource("official", "caltech", (File("caltech-101.zip", "records/mzrjq-6wc02/files/caltech-101.zip",
                                                md5="3138e1922a9193bfa496528edbbc45d0", size=140_000_000),),
                   (Unpack("caltech-101.zip", ".caltech-101-zip"),
                    Unpack("tree:.caltech-101-zip/caltech-101/101_ObjectCategories.tar.gz", "caltech101")),
                   note="the URL torchvision's Caltech101 uses since late 2025"),),
        "download caltech-101.zip from https://data.caltech.edu/records/mzrjq-6wc02 and unpack the "
        "101_ObjectCategories.tar.gz inside it into {root}/caltech101"),
    "CIFAR100": DatasetSources(
        (UrlSource("official", "toronto", (File("cifar-100-python.tar.gz", "cifar-100-python.tar.gz",
                                                md5="eb9058c3a382ffc7106e4002c42a8d85", size=170_000_000),),
                   (Unpack("cifar-100-python.tar.gz"),)),
         HubSource("uoft-cs/cifar100", "main", ("cifar100/train-*.parquet", "cifar100/test-*.parquet"),
                   (Convert("cifar100_parquet"),), needs=("pyarrow",),
                   note="parquet (PNG bytes + fine_label), converted to the python pickles")),
        "download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it in {root}"),
    "DTD": DatasetSources(
        (_vgg(File("dtd-r1.0.1.tar.gz", "data/dtd/download/dtd-r1.0.1.tar.gz", md5="fff73e5086ae6bdbea199a49dfb8a4c1",
                   size=630_000_000), steps=[Unpack("dtd-r1.0.1.tar.gz", "dtd")]),),
        "download dtd-r1.0.1.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/dtd/ and unpack it in {root}/dtd"),
    "EuroSAT": DatasetSources(
        (UrlSource("official", "dfki", (File("EuroSAT.zip", "EuroSAT.zip", md5="c8fa014336c82ac7804f0398fcb19387",
                                             size=94_000_000),), (Unpack("EuroSAT.zip", "eurosat"),)),
         HubSource("torchgeo/eurosat", "c877bcd43f099cd0196738f714544e355477f3fd", ("EuroSAT.zip",),
                   (Unpack("EuroSAT.zip", "eurosat"),), md5={"EuroSAT.zip": "c8fa014336c82ac7804f0398fcb19387"},
                   note="the copy torchvision's EuroSAT downloads")),
        "download EuroSAT.zip (RGB) from https://huggingface.co/datasets/torchgeo/eurosat and unpack it in "
        "{root}/eurosat"),
    "Flowers": DatasetSources(
        (_vgg(File("102flowers.tgz", "data/flowers/102/102flowers.tgz", md5="52808999861908f626f3c1f4e79d11fa",
                   size=340_000_000),
              File("imagelabels.mat", "data/flowers/102/imagelabels.mat", md5="e0620be6f572b9609742df49c70aed4d",
                   size=500),
              File("setid.mat", "data/flowers/102/setid.mat", md5="a5357ecc9cb78c4bef273ce3793fc85c", size=15_000),
              steps=[Unpack("102flowers.tgz", "flowers-102"), Place("imagelabels.mat", "flowers-102/imagelabels.mat"),
                     Place("setid.mat", "flowers-102/setid.mat")]),),
        "download 102flowers.tgz, imagelabels.mat and setid.mat from https://www.robots.ox.ac.uk/~vgg/data/flowers/"
        "102/ and unpack/put them in {root}/flowers-102"),
    "Food": DatasetSources(
        (UrlSource("official", "ethz", (File("food-101.tar.gz", "food-101.tar.gz",
                                             md5="85eeb15f3717b99a5da872d97d918f87", size=5_000_000_000),),
                   (Unpack("food-101.tar.gz"),)),),
        "download food-101.tar.gz from https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/ and unpack it "
        "in {root}"),
    "MNIST": DatasetSources(
        tuple(UrlSource(kind, base, (
            File("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
                 size=9_900_000),
            File("train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz", md5="d53e105ee54ea40749a09fcbcd1e9432",
                 size=29_000),
            File("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", md5="9fb629c4189551a2d022fa330f9573f3",
                 size=1_600_000),
            File("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz", md5="ec29112dd5afa0611ce80d1b7f02629c",
                 size=4_500)),
            tuple(Place(n, f"MNIST/raw/{n}") for n in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")))
              for kind, base in (("official", "lecun"), ("torchvision", "ossci")))
        + (HubSource("ylecun/mnist", "main", ("mnist/train-*.parquet", "mnist/test-*.parquet"),
                     (Convert("mnist_parquet"),), needs=("pyarrow",),
                     note="parquet (PNG bytes + label), converted to IDX files"),),
        "download the four *-ubyte.gz files from https://ossci-datasets.s3.amazonaws.com/mnist/ into {root}/MNIST/raw"),
    "OxfordPet": DatasetSources(
        (_vgg(File("images.tar.gz", "data/pets/data/images.tar.gz", md5="5c4f3ee8e5d25df40f4fd59a7f44e54c",
                   size=790_000_000),
              File("annotations.tar.gz", "data/pets/data/annotations.tar.gz", md5="95a8c909bbe2e81eed6a22bccdf3f68f",
                   size=19_000_000),
              steps=[Unpack("images.tar.gz", "oxford-iiit-pet"), Unpack("annotations.tar.gz", "oxford-iiit-pet")]),),
        "download images.tar.gz and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ and unpack "
        "both in {root}/oxford-iiit-pet"),
    "StanfordCars": DatasetSources(
        (UrlSource("official", "stanford-imagenet", (
            File("car_devkit.tgz", "car_devkit.tgz", size=330_000, base="stanford-ai"),
            File("cars_train.tgz", "cars_train.tgz", size=980_000_000),
            File("cars_test.tgz", "cars_test.tgz", size=980_000_000),
            File("cars_test_annos_withlabels.mat", "cars_test_annos_withlabels.mat", size=190_000)),
            (Unpack("car_devkit.tgz", "stanford_cars"), Unpack("cars_train.tgz", "stanford_cars"),
             Unpack("cars_test.tgz", "stanford_cars"),
             Place("cars_test_annos_withlabels.mat", "stanford_cars/cars_test_annos_withlabels.mat")),
            note="dead since 2023 (torchvision disabled it); tried in case it returns"),),
        "get car_devkit.tgz, cars_train.tgz, cars_test.tgz and cars_test_annos_withlabels.mat (e.g. the Kaggle "
        "copies of the Stanford release) into {root}/.cl-bench-fetch/downloads and re-run `cl-bench data fetch`, "
        "or unpack them in {root}/stanford_cars"),
    "SUN397": DatasetSources(
        (UrlSource("official", "princeton", (File("SUN397.tar.gz", "SUN397.tar.gz",
                                                  md5="8ca2778205c41d23104230ba66911c7a", size=39_000_000_000),),
                   (Unpack("SUN397.tar.gz"),), note="dead since January 2026 (pytorch/vision#9348)"),),
        "get SUN397.tar.gz (md5 8ca2778205c41d23104230ba66911c7a) from a copy of the Princeton release into "
        "{root}/.cl-bench-fetch/downloads and re-run `cl-bench data fetch`, or unpack it in {root}"),
    "TinyImageNet": DatasetSources(
        (UrlSource("official", "cs231n", (File("tiny-imagenet-200.zip", "tiny-imagenet-200.zip",
                                               md5="90528d7ca1a48142e341f4ef8d21d0de", size=250_000_000),),
                   (Unpack("tiny-imagenet-200.zip"),)),),
        "download tiny-imagenet-200.zip from http://cs231n.stanford.edu/ and unpack it in {root}"),
}


def get_sources(name: str) -> DatasetSources:
    for key, value in SOURCES.items():
        if key.lower() == name.lower():
            return value
    raise KeyError(name)
