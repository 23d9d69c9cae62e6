"""Neural translation with transformers sequence-to-sequence models: Marian (OPUS-MT),
M2M-100 and NLLB, from the hub (`hf:<id>`), a local directory or a PAIS snapshot.

Sentences are sorted by length and generated in batches on the model's device (fp16 on
CUDA by default), so padding stays small; the pairs a model serves come from its
tokenizer (M2M-100's and NLLB's language tokens, Marian's `>>xx<<` target tokens) or from
its name (`opus-mt-en-de`), or are given in the source (`en-de=/models/my-marian`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from itertools import permutations
from pathlib import Path
from typing import Any

import torch

from ..device import Placement, choose_placement
from ..hf import hf_directory, hf_licence, hf_version
from ..info import ModelInfo
from ..sources import Source, SourceError
from .engine import Engine, EngineError, Pair
from .languages import LANGUAGES, to_iso1

_OPUS_NAME = re.compile(r"opus-mt-(?:tc-[a-z]+-)?([a-zA-Z]+)-([a-zA-Z]+)")
_MARIAN_TARGET = re.compile(r"^>>(.+)<<$")


class Seq2SeqEngine(Engine):
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        info: ModelInfo,
        placement: Placement,
        targets: dict[Pair, dict[str, Any]],
        max_batch_size: int = 64,
    ):
        self.model = model.eval().to(placement.device, placement.dtype)
        self.tokenizer = tokenizer
        self.placement = placement
        self.max_batch_size = max_batch_size
        # pair -> how to ask for it: {"prefix": ">>es<< "} or {"src_lang": ..., "bos": token id}
        self._targets = targets
        self.info = info.with_details(
            engine="transformers",
            architecture=type(model).__name__,
            placement=placement.describe(),
            pairs=[f"{s}->{t}" for s, t in targets],
        )
        # Tokenizers of multilingual models keep the source language as state.
        self._lock = threading.Lock()
        self._max_positions = int(getattr(model.config, "max_position_embeddings", 512) or 512)

    @classmethod
    def load(
        cls,
        source: Source,
        pair: Pair | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        max_batch_size: int = 64,
        info: ModelInfo | None = None,
    ) -> Seq2SeqEngine:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        directory = hf_directory(source)
        if not (directory / "config.json").is_file():
            raise SourceError(
                f"{source.uri}: {directory} is not a transformers model directory (config.json)"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(directory)
            model = AutoModelForSeq2SeqLM.from_pretrained(directory)
        except (OSError, ValueError) as exc:
            raise SourceError(f"{source.uri}: cannot load a sequence-to-sequence model: {exc}") from exc
        name = source.name if source.scheme == "hf" else Path(source.name.rstrip("/")).name
        targets = _targets(tokenizer, pair, name, source.uri)
        if info is None:
            info = ModelInfo(
                task="translation",
                name=name,
                source=source.uri,
                version=hf_version(directory),
                licence=hf_licence(directory),
                origin=f"transformers {type(model).__name__} from {source.uri}",
            )
        placement = choose_placement(device, dtype, channels_last=False)
        return cls(model, tokenizer, info, placement, targets, max_batch_size)

    @property
    def pairs(self) -> dict[Pair, str]:
        return dict.fromkeys(self._targets, self.info.name)

    def cards(self) -> list[ModelInfo]:
        return [self.info]

    def manifest(self) -> dict[str, Any]:
        return {"kind": "seq2seq", "directory": "seq2seq-" + re.sub(r"\W+", "-", self.info.name)}

    def save(self, directory: Path) -> None:
        target = directory / self.manifest()["directory"]
        # Snapshots are stored in fp32 whatever the runtime computes in.
        self.model.to(torch.float32).save_pretrained(target)
        self.model.to(self.placement.dtype)
        self.tokenizer.save_pretrained(target)

    def translate(self, sentences: Sequence[str], source: str, target: str) -> list[str]:
        how = self._targets[(source, target)]
        prefix = how.get("prefix", "")
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        out: list[str] = [""] * len(sentences)
        try:
            for start in range(0, len(order), self.max_batch_size):
                chunk = order[start : start + self.max_batch_size]
                texts = [prefix + sentences[i] for i in chunk]
                for i, text in zip(chunk, self._generate(texts, how), strict=True):
                    out[i] = text
        except torch.OutOfMemoryError as exc:
            raise EngineError(f"{self.info.name}: out of device memory on {len(chunk)} sentences") from exc
        return out

    @torch.inference_mode()
    def _generate(self, texts: list[str], how: dict[str, Any]) -> list[str]:
        with self._lock:
            if "src_lang" in how:
                self.tokenizer.src_lang = how["src_lang"]
            batch = self.tokenizer(
                texts, return_tensors="pt", padding=True, truncation=True, max_length=self._max_positions
            ).to(self.placement.device)
        options: dict[str, Any] = {
            # room for a translation longer than its source, never a runaway generation
            "max_new_tokens": min(self._max_positions, 2 * batch["input_ids"].shape[1] + 16)
        }
        if "bos" in how:
            options["forced_bos_token_id"] = how["bos"]
        generated = self.model.generate(**batch, **options).tolist()
        if "bos" in how:
            # The forced target-language token is not always among the tokenizer's special
            # tokens (M2M-100's slow tokenizer), so skip_special_tokens may leave "__de__".
            generated = [[token for token in row if token != how["bos"]] for row in generated]
        return [t.strip() for t in self.tokenizer.batch_decode(generated, skip_special_tokens=True)]


def _targets(tokenizer: Any, pair: Pair | None, name: str, uri: str) -> dict[Pair, dict[str, Any]]:
    """The pairs the model serves and, for each, how to ask for it."""
    # M2M-100: __en__ style tokens, ISO 639-1 codes.
    lang_to_id = getattr(tokenizer, "lang_code_to_id", None)
    if lang_to_id:
        codes = {to_iso1(code): code for code in lang_to_id if to_iso1(code)}
        return _many_to_many(codes, lambda code: {"src_lang": code}, lambda code: lang_to_id[code], pair)
    # NLLB: FLORES-200 codes (eng_Latn) as special tokens.
    if "nllb" in type(tokenizer).__name__.lower():
        vocab = tokenizer.get_vocab()
        codes = {
            iso1: language.flores
            for iso1, language in LANGUAGES.items()
            if language.flores and language.flores in vocab
        }
        return _many_to_many(
            codes, lambda code: {"src_lang": code}, lambda code: tokenizer.convert_tokens_to_ids(code), pair
        )
    # Marian: one source; one target, or several chosen by a >>xx<< token.
    named = _OPUS_NAME.search(name)
    source = pair[0] if pair else (to_iso1(named.group(1)) if named else None)
    marian_targets = {
        to_iso1(m.group(1)): token
        for token in getattr(tokenizer, "supported_language_codes", None) or []
        if (m := _MARIAN_TARGET.match(token)) and to_iso1(m.group(1))
    }
    if marian_targets and source:
        chosen = {pair[1]: marian_targets[pair[1]]} if pair and pair[1] in marian_targets else marian_targets
        return {(source, target): {"prefix": token + " "} for target, token in chosen.items()}
    target = pair[1] if pair else (to_iso1(named.group(2)) if named else None)
    if source and target:
        return {(source, target): {}}
    raise SourceError(
        f"{uri}: cannot tell which language pair this model translates; name it in the "
        f"source as <source>-<target>=<uri>, e.g. en-de={uri}"
    )


def _many_to_many(codes: dict[str, str], ask_source: Any, bos_id: Any, pair: Pair | None) -> dict:
    if not codes:
        raise SourceError("the tokenizer names no language this service knows by an ISO 639-1 code")
    pairs = [pair] if pair else list(permutations(sorted(codes), 2))
    missing = [code for p in pairs for code in p if code not in codes]
    if missing:
        raise SourceError(f"the model does not know {', '.join(sorted(set(missing)))}")
    return {(s, t): {**ask_source(codes[s]), "bos": bos_id(codes[t])} for s, t in pairs}
