"""transformers VITS voices (`VitsModel` + `VitsTokenizer`: Meta's MMS-TTS family and other
VITS checkpoints) in PyTorch, batched with an attention mask.

VitsModel returns each item's audio length (`sequence_lengths`), so padded batches are cut
exactly, and takes the reading speed per call (`speaking_rate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..device import Placement


class VitsVoice:
    backend = "transformers-vits"

    def __init__(self, directory: Path, placement: Placement):
        import torch
        from transformers import VitsModel, VitsTokenizer

        self.directory = directory
        self.tokenizer = VitsTokenizer.from_pretrained(directory)
        if self.tokenizer.phonemize:
            from transformers.utils import is_phonemizer_available

            if not is_phonemizer_available():
                raise ValueError(
                    f"{directory}: this VITS tokenizer phonemizes its input with the `phonemizer` "
                    "package, which is not installed"
                )
        self.model = VitsModel.from_pretrained(directory, dtype=placement.dtype).to(placement.device).eval()
        self.placement = placement
        self.sample_rate = int(self.model.config.sampling_rate)
        self.language = _bcp47(self.tokenizer.language)
        self.batchable = True
        self._torch = torch

    def describe(self) -> str:
        return f"torch {self.placement.device.type} {str(self.placement.dtype).removeprefix('torch.')}"

    def ids(self, sentence: str) -> list[int]:
        """Token ids of one sentence; [] when no character of it is in the vocabulary."""
        ids = self.tokenizer(sentence).input_ids
        pad = self.tokenizer.pad_token_id
        return ids if any(i != pad for i in ids) else []

    def ids_many(self, sentences: list[str]) -> list[list[int]]:
        # A character vocabulary in Python: no native code to contain. (A tokenizer with
        # `phonemize` calls eSpeak in this process through the `phonemizer` package; none of
        # the served voices does, and that package is not installed.)
        return [self.ids(sentence) for sentence in sentences]

    def close(self) -> None:
        pass

    def generate(self, batch: list[list[int]], speed: float) -> list[np.ndarray]:
        torch = self._torch
        longest = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), longest), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        device = self.placement.device
        with torch.inference_mode():
            output = self.model(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                speaking_rate=self.model.config.speaking_rate * speed,
            )
        audio = output.waveform.float().cpu().numpy()
        lengths = output.sequence_lengths.cpu().tolist()
        return [audio[row, : int(lengths[row])] for row in range(len(batch))]

    def save(self, directory: Path) -> dict[str, str]:
        target = directory / "hf"
        self.model.to(dtype=self._torch.float32).save_pretrained(target)  # snapshots are fp32
        self.model.to(dtype=self.placement.dtype)
        self.tokenizer.save_pretrained(target)
        card = self.directory / "README.md"
        if card.is_file():
            (target / "README.md").write_bytes(card.read_bytes())
        return {"directory": "hf"}


# MMS tokenizers name ISO 639-3 codes; the service speaks BCP-47.
_ISO639_3 = {"eng": "en", "deu": "de", "fra": "fr", "spa": "es", "por": "pt", "ita": "it", "nld": "nl"}


def _bcp47(language: str | None) -> str:
    if not language:
        return "und"
    return _ISO639_3.get(language.lower(), language)
