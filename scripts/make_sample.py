#!/usr/bin/env python3
"""Generate the bundled demo sample `examples/sample/` deterministically (same bytes on every run).

Everything here is invented: entity names, tweets, boxes and the PIL drawings. Nothing is copied from the
real benchmark; only its FORMATS are reproduced, so `vkel data import` reads the sample exactly as it reads
the real files:

  train.txt dev.txt test.txt   fine-grained CoNLL (IMGID:<id>, token<TAB>coarse-BIO<TAB>fine-BIO, blank line)
  xml/<id>.xml                 Pascal-VOC boxes (only for tweets with at least one groundable entity)
  images/<id>.jpg              one small drawing per tweet: a shape where each box is, plus distractors
  figer.txt                    FIGER-style text-only NER for `vkel augment` (token<TAB>B-/type,/type)
  pool/*.jpg + pool/index.json a local image pool for `vkel augment --retriever local`

Usage: python scripts/make_sample.py [OUT_DIR]   (default: examples/sample next to this script's repo)
"""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

SEED = 20240607
SPLITS = {"train": 24, "dev": 8, "test": 8}
SIZES = [(160, 120), (120, 160), (144, 144), (176, 132), (128, 96)]
JPEG_QUALITY = 70

# (surface string, coarse type, fine type): invented names, one or two per fine type the templates use.
ENTITIES = {
    "person": [("Marla Quint", "athlete"), ("Tobias Renfield", "politician"), ("Juno Harlow", "musician"),
               ("Dex Calloway", "actor"), ("Priya Okonedo", "journalist"), ("Coach Amberly", "coach"),
               ("Elio Brandt", "athlete"), ("Nadia Voss", "author")],
    "location": [("Port Averly", "city"), ("Veloria", "country"), ("Kestrel Bay", "location_other"),
                 ("Brightwater Park", "park"), ("Lower Danford", "state")],
    "building": [("Halcyon Arena", "sports_facility"), ("Museum of Glass", "cultural_place"),
                 ("Copperline Theatre", "entertainment_place")],
    "organization": [("Northwind Rovers", "sports_team"), ("Lumen Labs", "company"), ("Static Orchard", "band"),
                     ("Averly Daily", "news_agency"), ("Green Lantern Party", "political_party")],
    "product": [("Zephyr X2", "brand_name_products"), ("Pixel Quest", "game"), ("Orbit OS", "software")],
    "art": [("Midnight Harbor", "film_and_television_works"), ("Glass Rivers", "music"),
            ("The Copper Key", "written_work")],
    "event": [("Averly Marathon", "sports_event"), ("Lantern Fest", "festival")],
    "other": [("Harbor Prize", "award"), ("SnapGrid", "website"), ("Biscuit the Otter", "animal")],
}

# Tweet templates: {coarse} slots are filled with an entity of that type, {=} repeats the previous entity (a
# repeated mention shares its boxes); other words are plain tokens.
TEMPLATES = [
    "{person} scores twice as {organization} beat the visitors at {building} tonight",
    "Huge crowd in {location} for {event} this morning # weekend",
    "{person} and {person} share the stage at {building}",
    "New trailer for {art} drops today , starring {person}",
    "{organization} announces {product} , available next month in {location}",
    "Just finished {art} by {person} . What an ending !",
    "{person} wins the {other} after a stunning season",
    "Road closures around {location} ahead of {event}",
    "Morning walk with {other} in {location}",
    "{organization} sign {person} on a two year deal",
    "Queue outside {building} for the {product} launch",
    "{person} : \" {location} will always be home \"",
    "Live from {event} with {organization} on the main stage",
    "{person} meets {person} in {location} to talk trade",
    "Breaking : {organization} reports record numbers for {product}",
    "{organization} fans , tonight is the night ! Go {=} !",
    "Nothing beats a quiet sunday afternoon",
    "Who else is watching tonight ? # sundayvibes",
]

# Colours per coarse type for the drawings (what the box covers), and a pale background palette.
COLOURS = {"person": (200, 60, 60), "location": (60, 140, 60), "building": (90, 90, 160),
           "organization": (230, 160, 30), "product": (40, 160, 200), "art": (160, 60, 160),
           "event": (220, 110, 20), "other": (110, 80, 50)}
BACKGROUNDS = [(235, 230, 215), (215, 230, 240), (230, 240, 220), (245, 225, 225), (225, 225, 235)]

# Probability that an entity of a coarse type is in the picture (people and things are, places rarely).
GROUNDABLE = {"person": 0.75, "building": 0.6, "product": 0.6, "organization": 0.4, "location": 0.3,
              "art": 0.3, "event": 0.3, "other": 0.5}

HANDLES = ["averly_news", "sportsdesk", "popculture", "city_life", "fanzone"]


def make_tweet(rng: random.Random, template: str):
    """Tokens and (start, end, coarse, fine, text) spans; the same name twice in a tweet is one entity text."""
    tokens: list[str] = []
    spans: list[tuple[int, int, str, str, str]] = []
    used: set[str] = set()
    if rng.random() < 0.4:
        tokens += ["RT", "@", rng.choice(HANDLES), ":"]
    for word in template.split():
        if word == "{=}":
            _, _, coarse, fine, name = spans[-1]
            start = len(tokens)
            tokens += name.split()
            spans.append((start, len(tokens), coarse, fine, name))
        elif word.startswith("{") and word.endswith("}"):
            coarse = word[1:-1]
            choices = [e for e in ENTITIES[coarse] if e[0] not in used] or ENTITIES[coarse]
            name, fine = rng.choice(choices)
            used.add(name)
            start = len(tokens)
            tokens += name.split()
            spans.append((start, len(tokens), coarse, fine, name))
        else:
            tokens.append(word)
    return tokens, spans


def random_box(rng: random.Random, width: int, height: int) -> list[int]:
    w = rng.randint(width // 4, width // 2)
    h = rng.randint(height // 4, int(height * 0.7))
    x1 = rng.randint(0, width - w)
    y1 = rng.randint(0, height - h)
    return [x1, y1, x1 + w, y1 + h]


def draw_entity(draw: ImageDraw.ImageDraw, coarse: str, box: list[int]) -> None:
    """A recognisable shape per coarse type filling the box (the detector and CLIP see real pixels)."""
    x1, y1, x2, y2 = box
    colour = COLOURS[coarse]
    if coarse == "person":  # head + body
        head = (y2 - y1) // 3
        cx = (x1 + x2) // 2
        draw.ellipse([cx - head // 2, y1, cx + head // 2, y1 + head], fill=colour)
        draw.rectangle([x1 + (x2 - x1) // 6, y1 + head, x2 - (x2 - x1) // 6, y2], fill=colour)
    elif coarse == "building":  # block with windows
        draw.rectangle(box, fill=colour)
        for wx in range(x1 + 4, x2 - 6, 10):
            for wy in range(y1 + 4, y2 - 6, 12):
                draw.rectangle([wx, wy, wx + 4, wy + 5], fill=(250, 240, 150))
    elif coarse == "location":  # mountain
        draw.polygon([(x1, y2), ((x1 + x2) // 2, y1), (x2, y2)], fill=colour)
    elif coarse == "organization":  # round logo with a bar
        draw.ellipse(box, fill=colour)
        draw.rectangle([x1 + (x2 - x1) // 4, (y1 + y2) // 2 - 3, x2 - (x2 - x1) // 4, (y1 + y2) // 2 + 3],
                       fill=(255, 255, 255))
    elif coarse == "product":  # device with a screen
        draw.rounded_rectangle(box, radius=6, fill=colour)
        draw.rectangle([x1 + 4, y1 + 4, x2 - 4, y2 - 10], fill=(20, 20, 30))
    else:  # art / event / other: a diamond
        draw.polygon([((x1 + x2) // 2, y1), (x2, (y1 + y2) // 2), ((x1 + x2) // 2, y2), (x1, (y1 + y2) // 2)],
                     fill=colour)
    draw.rectangle(box, outline=(0, 0, 0))


def draw_image(rng: random.Random, size: tuple[int, int], shapes: list[tuple[str, list[int]]]) -> bytes:
    image = Image.new("RGB", size, rng.choice(BACKGROUNDS))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 3)):  # small distractors that are no entity
        x, y = rng.randint(0, size[0] - 12), rng.randint(0, size[1] - 12)
        draw.ellipse([x, y, x + rng.randint(6, 12), y + rng.randint(6, 12)], fill=(150, 150, 150))
    for coarse, box in shapes:
        draw_entity(draw, coarse, box)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def voc_xml(imgid: str, size: tuple[int, int], objects: list[tuple[str, list[int]]]) -> str:
    parts = ["<annotation>", "\t<folder>sample</folder>", f"\t<filename>{imgid}.jpg</filename>",
             "\t<source>", "\t\t<database>vkel sample</database>", "\t</source>",
             "\t<size>", f"\t\t<width>{size[0]}</width>", f"\t\t<height>{size[1]}</height>",
             "\t\t<depth>3</depth>", "\t</size>", "\t<segmented>0</segmented>"]
    for name, box in objects:
        parts += ["\t<object>", f"\t\t<name>{name}</name>", "\t\t<pose>Unspecified</pose>",
                  "\t\t<truncated>0</truncated>", "\t\t<difficult>0</difficult>", "\t\t<bndbox>"]
        parts += [f"\t\t\t<{tag}>{value}</{tag}>" for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box)]
        parts += ["\t\t</bndbox>", "\t</object>"]
    parts.append("</annotation>")
    return "\n".join(parts) + "\n"


def conll_block(imgid: str, tokens: list[str], spans) -> str:
    coarse_tags = ["O"] * len(tokens)
    fine_tags = ["O"] * len(tokens)
    for start, end, coarse, fine, _ in spans:
        for i in range(start, end):
            prefix = "B" if i == start else "I"
            coarse_tags[i] = f"{prefix}-{coarse}"
            fine_tags[i] = f"{prefix}-{fine}"
    lines = [f"IMGID:{imgid}"] + [f"{t}\t{c}\t{f}" for t, c, f in zip(tokens, coarse_tags, fine_tags)]
    return "\n".join(lines) + "\n\n"


def make_benchmark(rng: random.Random, files: dict[str, bytes]) -> None:
    imgid = 910000
    # Every template comes up two or three times, in a seeded order, so each split mixes them.
    order = [t for _ in range(3) for t in TEMPLATES]
    rng.shuffle(order)
    for split, count in SPLITS.items():
        blocks = []
        for n in range(count):
            imgid += 1
            name = str(imgid)
            tokens, spans = make_tweet(rng, order[imgid - 910001])
            size = rng.choice(SIZES)
            boxes: dict[str, list[list[int]]] = {}
            shapes: list[tuple[str, list[int]]] = []
            for _, _, coarse, _, text in spans:
                if text in boxes or rng.random() >= GROUNDABLE[coarse]:
                    continue
                n_boxes = 2 if coarse == "person" and rng.random() < 0.15 else 1
                boxes[text] = [random_box(rng, *size) for _ in range(n_boxes)]
                shapes += [(coarse, box) for box in boxes[text]]
            blocks.append(conll_block(name, tokens, spans))
            files[f"images/{name}.jpg"] = draw_image(rng, size, shapes)
            if boxes:
                objects = [(text, box) for text, bs in boxes.items() for box in bs]
                files[f"xml/{name}.xml"] = voc_xml(name, size, objects).encode()
        files[f"{split}.txt"] = "".join(blocks).encode()


# FIGER-style sentences: [(word or (mention, "/type,/type"))]. Types are FIGER names; the augment stage maps
# them to the benchmark's types. One sentence is over 26 tokens, one has only an unmapped type (/time),
# one has no mention: `vkel data import figer` drops them and says so.
FIGER = [
    [("Marla Quint", "/person/athlete,/person"), "ran", "the", ("Averly Marathon", "/event/sports_event,/event"),
     "in", "record", "time", "."],
    [("Lumen Labs", "/organization/company,/organization"), "unveiled", "the", ("Zephyr X2", "/product"),
     "phone", "in", ("Port Averly", "/location/city,/location"), "."],
    [("Static Orchard", "/organization,/music"), "played", "a", "sold", "out", "show", "at",
     ("Copperline Theatre", "/building/theater,/building"), "."],
    [("Nadia Voss", "/person/author,/person"), "signed", "copies", "of", ("The Copper Key", "/written_work"),
     "."],
    [("Midnight Harbor", "/art/film,/art"), "opens", "in", ("Veloria", "/location/country,/location"),
     "on", "Friday", "."],
    [("Tobias Renfield", "/person/politician,/person"), "visited", ("Halcyon Arena",
                                                                     "/building/sports_facility,/building"), "."],
    [("Pixel Quest", "/game"), "sold", "a", "million", "copies", "in", "its", "first", "week", "."],
    [("Northwind Rovers", "/organization/sports_team,/organization"), "hired", ("Coach Amberly",
                                                                                "/person/coach,/person"), "."],
    [("Orbit OS", "/software"), "now", "runs", "on", "the", ("Zephyr X2", "/product/mobile_phone,/product"),
     "."],
    [("Averly Daily", "/news_agency,/organization"), "covered", ("Lantern Fest", "/event"), "live", "."],
    [("Juno Harlow", "/person/musician,/person"), "headlines", ("Lantern Fest", "/event"), "in",
     ("Brightwater Park", "/park,/location"), "."],
    [("Dex Calloway", "/person/actor,/person"), "stars", "in", ("Midnight Harbor", "/art/film,/art"), "."],
    ["The", "long", "sentence", "about", ("Elio Brandt", "/person/athlete,/person"), "keeps", "going", "with",
     "many", "words", "that", "add", "nothing", "at", "all", "to", "the", "story", "so", "the", "import",
     "drops", "it", "for", "being", "far", "too", "long", "."],
    ["It", "happened", "on", ("Tuesday", "/time"), "."],
    ["Nothing", "to", "see", "here", "."],
]


def figer_file() -> bytes:
    lines = []
    for sentence in FIGER:
        for item in sentence:
            if isinstance(item, str):
                lines.append(f"{item}\tO")
            else:
                mention, types = item
                for i, token in enumerate(mention.split()):
                    lines.append(f"{token}\t{'B' if i == 0 else 'I'}-{types}")
        lines.append("")
    return ("\n".join(lines) + "\n").encode()


def make_pool(rng: random.Random, files: dict[str, bytes]) -> None:
    """Two or three candidate pictures per FIGER sentence, indexed by record id (`vkel data import figer`
    names sentence N `figer-N`); `vkel augment --retriever local --index pool/index.json` reads it."""
    coarse_of_figer = {"/person": "person", "/location": "location", "/building": "building", "/game": "product",
                       "/organization": "organization", "/product": "product", "/art": "art", "/event": "event",
                       "/written_work": "art", "/software": "product", "/news_agency": "organization",
                       "/park": "location", "/music": "art", "/time": "other"}
    index: dict[str, list[str]] = {}
    for n, sentence in enumerate(FIGER, 1):
        kinds = []
        for item in sentence:
            if not isinstance(item, str):
                types = item[1].split(",")
                top = "/" + types[-1].strip("/").split("/")[0]
                kinds.append(coarse_of_figer.get(top, "other"))
        names = []
        for c in range(2 if n % 2 else 3):
            size = rng.choice(SIZES)
            shapes = [(kind, random_box(rng, *size)) for kind in kinds[: 1 + c]]
            name = f"pool/s{n:02d}-{c}.jpg"
            files[name] = draw_image(rng, size, shapes)
            names.append(name.split("/", 1)[1])
        index[f"figer-{n}"] = names
    files["pool/index.json"] = (json.dumps(index, indent=1, sort_keys=True) + "\n").encode()


def generate() -> dict[str, bytes]:
    """Every file of the sample, path (relative) -> bytes."""
    rng = random.Random(SEED)
    files: dict[str, bytes] = {}
    make_benchmark(rng, files)
    files["figer.txt"] = figer_file()
    make_pool(random.Random(SEED + 1), files)
    return files


def write(out: Path) -> int:
    files = generate()
    for rel, data in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return len(files)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "examples" / "sample"
    count = write(out)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {count} files to {out} ({total / 1024:.0f} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
