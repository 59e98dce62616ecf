"""A procedurally generated world of 32x32 images for the embedded (CPU-sized) scenarios.

Scenes are a shape in a colour and a size on a textured, tinted background, plus pixel noise. The tiny
backbone is pre-trained on captions of such scenes (colours, textures and shapes are *known*), while
downstream domains add knowledge it cannot have (printed digits and made-up glyphs, whose names it never
read) and a distribution shift (shapes drawn as outlines). Everything is a pure function of a seed.
World v2 made every domain learnable in the micro budget; docs/micro-world.md says what limited v1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 32
WORLD_VERSION = "micro-world-2"

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring", "bar", "crescent")
COLOURS = {
    "red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230), "yellow": (235, 220, 50),
    "purple": (150, 60, 200), "orange": (245, 140, 30), "white": (245, 245, 245), "cyan": (40, 210, 220),
}
OUTLINE_SHAPES = ("circle", "triangle", "cross", "ring", "bar", "crescent")
TEXTURES = ("plain", "striped", "dotted", "checkered", "wavy", "noisy")
SIZES = ("small", "large")
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Made-up words: their text embeddings carry no visual meaning for the backbone.
GLYPH_NAMES = ("zorb", "quil", "mave", "trun", "plex", "dosk", "fane", "grib", "hult", "jorp",
               "kesh", "lumb")

_yy, _xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5


def shape_mask(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Boolean SIZE x SIZE mask of a shape centred at (cx, cy) with radius r (pixels)."""
    dx, dy = (_xx - cx) / r, (_yy - cy) / r
    if shape == "circle":
        return dx**2 + dy**2 <= 1
    if shape == "square":
        return (np.abs(dx) <= 0.8) & (np.abs(dy) <= 0.8)
    if shape == "triangle":
        return (dy <= 0.8) & (dy >= -1.0 + 2 * np.abs(dx)) & (np.abs(dx) <= 1)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1
    if shape == "cross":
        return ((np.abs(dx) <= 0.3) & (np.abs(dy) <= 1)) | ((np.abs(dy) <= 0.3) & (np.abs(dx) <= 1))
    if shape == "ring":
        d = dx**2 + dy**2
        return (d <= 1) & (d >= 0.4)
    if shape == "bar":
        return (np.abs(dx) <= 1) & (np.abs(dy) <= 0.35)
    if shape == "crescent":
        return (dx**2 + dy**2 <= 1) & ((dx - 0.45) ** 2 + dy**2 > 0.6)
    raise ValueError(shape)


def outline(mask: np.ndarray) -> np.ndarray:
    """The one-pixel boundary of a mask (mask minus its 4-neighbour erosion)."""
    p = np.pad(mask, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return mask & ~inner


def texture(name: str, rng: np.random.Generator) -> np.ndarray:
    """Background pattern in [0, 1], SIZE x SIZE, with random phase/period."""
    ph, per = rng.uniform(0, 6.28), rng.uniform(5, 8)
    if name == "plain":
        return np.zeros((SIZE, SIZE), np.float32)
    if name == "striped":
        return (np.sin(2 * np.pi * _xx / per + ph) > 0).astype(np.float32)
    if name == "dotted":
        return ((np.sin(2 * np.pi * _xx / per + ph) * np.sin(2 * np.pi * _yy / per + ph)) > 0.55).astype(
            np.float32)
    if name == "checkered":
        return ((np.floor(_xx / 4 + ph) + np.floor(_yy / 4)) % 2).astype(np.float32)
    if name == "wavy":
        return (np.sin(2 * np.pi * (_yy + 3 * np.sin(_xx / 3 + ph)) / per) > 0).astype(np.float32)
    if name == "noisy":
        return (rng.random((SIZE, SIZE)) > 0.5).astype(np.float32)
    raise ValueError(name)


def background(tex: str, rng: np.random.Generator) -> np.ndarray:
    """A dark, randomly tinted two-tone background (float32 HxWx3 in 0..255)."""
    base = rng.uniform(20, 70, size=3)
    alt = base + rng.uniform(50, 90)
    t = texture(tex, rng)[..., None]
    return (1 - t) * base + t * alt


def paint(img: np.ndarray, mask: np.ndarray, rgb, rng: np.random.Generator) -> np.ndarray:
    colour = np.clip(np.asarray(rgb, np.float32) + rng.normal(0, 12, 3), 0, 255)
    img[mask] = colour
    return img


def finish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    size: str
    texture: str
    outline: bool = False


def render_scene(s: Scene, rng: np.random.Generator) -> np.ndarray:
    r = rng.uniform(5.5, 7.0) if s.size == "small" else rng.uniform(9.5, 12.0)
    margin = r + 1
    cx, cy = rng.uniform(margin, SIZE - margin, size=2)
    m = shape_mask(s.shape, cx, cy, r)
    if s.outline:
        m = outline(m) | outline(shape_mask(s.shape, cx, cy, r - 1)) | outline(shape_mask(s.shape, cx, cy, r - 2))
    return finish(paint(background(s.texture, rng), m, COLOURS[s.colour], rng), rng)


def random_scene(rng: np.random.Generator, **fixed) -> Scene:
    kw = dict(shape=SHAPES[rng.integers(8)], colour=list(COLOURS)[rng.integers(8)],
              size=SIZES[rng.integers(2)], texture=TEXTURES[rng.integers(6)])
    kw.update(fixed)
    return Scene(**kw)


# ---- pre-training captions -------------------------------------------------------------------------
_CAPTION_TEMPLATES = ("a photo of a {}.", "a {}.", "an image of a {}.", "a picture of a {}.")


def caption(s: Scene, rng: np.random.Generator) -> str:
    """A caption naming a random subset of the scene's attributes (shape named most often)."""
    words = []
    if rng.random() < 0.4:
        words.append(s.size)
    if rng.random() < 0.7:
        words.append(s.colour)
    noun = s.shape if rng.random() < 0.85 else "shape"
    phrase = " ".join(words + [noun])
    if rng.random() < 0.6:
        phrase += f" on a {s.texture} background"
    return _CAPTION_TEMPLATES[rng.integers(len(_CAPTION_TEMPLATES))].format(phrase)


def pretraining_pairs(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """n (image, caption) pairs of filled shapes: the backbone's 'pre-training world'."""
    rng = np.random.default_rng(seed)
    imgs = np.empty((n, SIZE, SIZE, 3), np.uint8)
    caps = []
    for i in range(n):
        s = random_scene(rng)
        imgs[i] = render_scene(s, rng)
        caps.append(caption(s, rng))
    return imgs, caps


# ---- downstream domains ------------------------------------------------------------------------------
def _digits():
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target


def render_digit(img8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real 8x8 digit upscaled x4 to fill the image, in a random ink on a plain tinted background.

    Not jittered: each 8x8 patch of the backbone then sees exactly 2x2 of the digit's own pixels, so the new
    knowledge is the digit's shape alone (world v1 jittered a x3 digit, and fine-tuning could not learn
    it in the micro budget: see docs/micro-world.md)."""
    alpha = np.kron(img8, np.ones((SIZE // 8, SIZE // 8), np.float32))
    bg = background("plain", rng)
    ink = np.asarray(list(COLOURS.values())[rng.integers(8)], np.float32)
    return finish(bg * (1 - alpha[..., None]) + ink * alpha[..., None], rng)


# A 5x7 pixel font for the printed digits 0-9 (rows top to bottom, "#" = ink).
DIGIT_FONT = (
    (" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "),
    ("  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    (" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"),
    ("#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "),
    ("   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "),
    ("#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "),
    ("  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "),
    ("#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "),
    (" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "),
    (" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "),
)
_FONT = np.array([[[c == "#" for c in row] for row in d] for d in DIGIT_FONT])


def render_printed_digit(k: int, rng: np.random.Generator) -> np.ndarray:
    """Digit k of the 5x7 font at x4 (20 x 28 px), placed at random, in a random ink on a textured background."""
    big = np.kron(_FONT[k], np.ones((4, 4), bool))
    ox, oy = rng.integers(1, SIZE - 20, size=1)[0], rng.integers(1, SIZE - 28, size=1)[0]
    m = np.zeros((SIZE, SIZE), bool)
    m[oy:oy + 28, ox:ox + 20] = big
    rgb = list(COLOURS.values())[rng.integers(8)]
    return finish(paint(background("plain", rng), m, rgb, rng), rng)


def glyph_bitmaps(seed: int = 1234) -> np.ndarray:
    """Twelve distinct random 5x5 glyphs (fixed by seed: part of the world's definition)."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while len(out) < len(GLYPH_NAMES):
        g = rng.random((5, 5)) < 0.5
        if 8 <= g.sum() <= 17 and all((g != h).sum() >= 7 for h in out):
            out.append(g)
    return np.stack(out)


_GLYPHS = glyph_bitmaps()


def render_glyph(k: int, rng: np.random.Generator) -> np.ndarray:
    big = np.kron(_GLYPHS[k], np.ones((5, 5), bool))  # 25 px
    ox, oy = rng.integers(2, SIZE - 25 - 2 + 1, size=2)
    m = np.zeros((SIZE, SIZE), bool)
    m[oy:oy + 25, ox:ox + 25] = big
    rgb = list(COLOURS.values())[rng.integers(8)]
    return finish(paint(background(TEXTURES[rng.integers(6)], rng), m, rgb, rng), rng)


@dataclass(frozen=True)
class Domain:
    """A downstream classification domain: class names, one prompt template, and a sampler."""

    name: str
    classnames: tuple[str, ...]
    template: str
    description: str


DOMAINS = {
    "colours": Domain("colours", tuple(COLOURS), "a photo of a {} shape.", "shape colour (known)"),
    "textures": Domain("textures", TEXTURES, "a shape on a {} background.", "background texture (known)"),
    "shapes": Domain("shapes", SHAPES, "a photo of a {}.", "filled shapes (partly known)"),
    # Six shapes only: at 32 px and the backbone's 8 px patches the contours of squares and diamonds are too close
    # to circles and crescents to be learned in the micro budget (docs/micro-world.md).
    # Its own template, as every MTIL dataset has: with the shapes' prompt, learning outlines rewrote the very
    # class embeddings the shapes task reads.
    "outlines": Domain("outlines", OUTLINE_SHAPES, "a line drawing of a {}.", "shapes drawn as outlines (shifted)"),
    "digits": Domain("digits", DIGIT_NAMES, 'a photo of the number "{}".', "printed digits (new)"),
    "handwritten": Domain("handwritten", DIGIT_NAMES, 'a photo of the number "{}".',
                          "scikit-learn's real 8x8 handwritten digits (new, hard at micro scale)"),
    "glyphs": Domain("glyphs", GLYPH_NAMES, "a photo of a {} glyph.", "made-up glyphs (new)"),
}


def render_domain(domain: str, n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n_per_class images of every class of a domain (uint8 N x 32 x 32 x 3, int64 labels)."""
    rng = np.random.default_rng(seed)
    d = DOMAINS[domain]
    C = len(d.classnames)
    labels = np.repeat(np.arange(C), n_per_class)
    imgs = np.empty((len(labels), SIZE, SIZE, 3), np.uint8)
    if domain == "handwritten":
        images, target = _digits()
        # Each class's samples in a fixed shuffled order: scikit-learn lists them writer by writer, and
        # splitting that order in halves put other writers in the test half than in the train half.
        perm = np.random.default_rng(8).permutation(len(target))
        pools = [perm[target[perm] == c] for c in range(10)]
    for i, y in enumerate(labels):
        if domain == "colours":
            imgs[i] = render_scene(random_scene(rng, colour=d.classnames[y]), rng)
        elif domain == "textures":
            imgs[i] = render_scene(random_scene(rng, texture=d.classnames[y]), rng)
        elif domain in ("shapes", "outlines"):
            # Outlines: large, on a plain background (a texture's own edges, or a small size, hide the contour).
            fixed = {"outline": True, "texture": "plain", "size": "large"} if domain == "outlines" else {}
            imgs[i] = render_scene(random_scene(rng, shape=d.classnames[y], **fixed), rng)
        elif domain == "digits":
            imgs[i] = render_printed_digit(int(y), rng)
        elif domain == "handwritten":
            half = pools[y][: len(pools[y]) // 2] if seed % 2 == 0 else pools[y][len(pools[y]) // 2:]
            imgs[i] = render_digit(images[half[rng.integers(len(half))]], rng)
        else:
            imgs[i] = render_glyph(int(y), rng)
    return imgs, labels


EVAL_SPLITS = ("test", "val")


def domain_split(domain: str, n_train: int, n_test: int, seed: int, split: str = "test"):
    """Deterministic train and evaluation sets. Train uses an even seed, test and validation two odd ones
    (so handwritten digits come from disjoint halves of scikit-learn's samples; their validation set
    shares the test half). Micro profiles are tuned on ``split="val"``, never on the test set."""
    base = 1000 * (1 + list(DOMAINS).index(domain)) + 2 * seed * 7919
    if split not in EVAL_SPLITS:
        raise ValueError(f"split {split!r} is not one of {EVAL_SPLITS}")
    return render_domain(domain, n_train, base), render_domain(domain, n_test, base + 1 + 2 * EVAL_SPLITS.index(split))
