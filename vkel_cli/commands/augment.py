"""`vkel augment`: synthetic image-text pairs for stage 1 from text-only NER records."""

import os
from typing import Annotated, Literal, Optional

import typer

from ._options import AllowPrivateUrls, Inputs, OnError, Output, allow_private


def augment_cli(
    inputs: Inputs = None,
    retriever: Annotated[Literal["google", "local", "urls"], typer.Option(
        "--retriever",
        help="Image source. google: Custom Search JSON API ($VKEL_GOOGLE_API_KEY, $VKEL_GOOGLE_CSE_ID). "
             "local: --index maps record ids or queries to image files/URLs. urls: --index maps record ids to URLs."
    )] = "google",
    index: Annotated[Optional[str], typer.Option("--index", metavar="FILE", help="Index file for --retriever local|urls.")] = None,
    search_url: Annotated[Optional[str], typer.Option(
        "--search-url", help="Custom Search endpoint (default $VKEL_GOOGLE_BASE_URL, else Google's).")] = None,
    image_dir: Annotated[Optional[str], typer.Option(
        "--image-dir", metavar="DIR", help="Where downloaded images are stored, content-addressed [default: <vkel cache>/images].")
    ] = None,
    relative: Annotated[bool, typer.Option(
        "--relative", help="Write `image` relative to --image-dir (use it as --image-root later) instead of "
                           "an absolute path.")] = False,
    candidates: Annotated[int, typer.Option("--candidates", min=1, help="Candidate images per sentence.")] = 5,
    clip_model: Annotated[str, typer.Option(
        "--clip-model", metavar="NAME|DIR", help="open_clip architecture name, or a directory with open_clip_config.json + weights.")
    ] = "ViT-L-14",
    clip_pretrained: Annotated[str, typer.Option(
        "--clip-pretrained", metavar="TAG|FILE", help="open_clip weights tag (e.g. openai), a checkpoint file, or none (random).")
    ] = "openai",
    threshold: Annotated[float, typer.Option(
        "--threshold", help="Keep the top-1 candidate only if its cosine similarity is at least this.")] = 0.3,
    ratio: Annotated[Optional[float], typer.Option(
        "--ratio", help="Keep round(R x --reference-size) accepted records, a seeded random subset.")] = None,
    reference_size: Annotated[Optional[int], typer.Option(
        "--reference-size", help="Size of the original training set that --ratio is relative to.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --ratio subsample and of random CLIP weights (--clip-pretrained none).")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per CLIP forward pass.")] = 32,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Download threads.")] = 8,
    decode_workers: Annotated[Optional[int], typer.Option(
        "--decode-workers", min=0, show_default=False,
        help="Processes that decode, verify and resize the candidates (0: in the download threads) "
             "[default: the number of CPU cores, at most 8].")] = None,
    max_image_bytes: Annotated[int, typer.Option("--max-image-bytes", min=1, help="Size cap per image.")
                               ] = 10_000_000,
    timeout: Annotated[float, typer.Option("--timeout", help="Total deadline in seconds per HTTP request (connect and all reads).")] = 20.0,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries of a transient HTTP failure.")] = 2,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1, ...")] = "auto",
    output: Output = "-",
    allow_private_urls: AllowPrivateUrls = False,
    on_error: OnError = "fail",
):
    """Pair text-only sentences with retrieved images.

    Synthetic stage-1 data: each sentence gets its best retrieved image (CLIP cosine >= --threshold);
    records that find none are dropped and counted on stderr. Mix with the originals with `cat`."""
    allow_private(allow_private_urls)
    from ..augment.run import AugmentStats, augment, sample_size
    from ..augment.clip import OpenClipScorer
    from ..core.paths import cache_dir
    from ..core.progress import log
    from ..augment.retrieval import get_retriever
    from ..augment.retrieval.download import ImageStore
    from ._options import run_stage

    if (ratio is None) != (reference_size is None):
        raise typer.BadParameter("--ratio and --reference-size go together (e.g. --ratio 0.8 --reference-size 7000)")
    sample = sample_size(ratio, reference_size)
    source = get_retriever(retriever, index=index, search_url=search_url, timeout=timeout, retries=retries)
    store = ImageStore(image_dir or str(cache_dir() / "images"), max_bytes=max_image_bytes, timeout=timeout,
                       retries=retries)
    scorer = OpenClipScorer(clip_model, clip_pretrained, device=device, batch_size=batch_size, seed=seed)
    if getattr(scorer, "random_weights", False):
        log(f"warning: {clip_model} has random weights (--clip-pretrained {clip_pretrained}): scores are noise")
    stats = AugmentStats()
    if decode_workers is None:
        decode_workers = min(8, os.cpu_count() or 1)

    def transform(pairs, policy):
        return augment(pairs, policy, retriever=source, store=store, scorer=scorer, candidates=candidates,
                       threshold=threshold, workers=workers, decode_workers=decode_workers, sample=sample,
                       seed=seed, relative=relative, stats=stats)

    try:
        run_stage(inputs, output, on_error, transform)
    finally:
        log(stats.summary(store))
