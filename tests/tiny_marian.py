"""A tiny Marian translation model made on the spot: SentencePiece vocabularies trained on
a few phrases, a 1-layer MarianMT trained until it reproduces them, saved with
`save_pretrained` — so the neural engine is tested through the real transformers loading,
tokenisation and generation code, offline and in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import sentencepiece as spm
import torch

EN_ES = {
    "hello world": "hola mundo",
    "the red house": "la casa roja",
    "a new car": "un coche nuevo",
    "good morning": "buenos días",
    "the black cat": "el gato negro",
    "thank you very much": "muchas gracias",
}

CARD = "---\nlicense: apache-2.0\n---\n# tiny test Marian model, made by tests/tiny_marian.py\n"


def make_tiny_marian(directory: Path, pairs: dict[str, str] = EN_ES, max_steps: int = 2000) -> Path:
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    for side, texts in (("source", list(pairs)), ("target", list(pairs.values()))):
        corpus = directory / f"{side}.txt"
        corpus.write_text("\n".join(texts * 3) + "\n")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(directory / side),
            vocab_size=40,
            hard_vocab_limit=False,
            character_coverage=1.0,
            bos_id=-1,
            eos_id=-1,
            unk_id=0,
            pad_id=-1,
            minloglevel=2,
        )
        (directory / f"{side}.model").rename(directory / f"{side}.spm")
        corpus.unlink()
        (directory / f"{side}.vocab").unlink()
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}  # Marian's special tokens first
    for side in ("source", "target"):
        processor = spm.SentencePieceProcessor(model_file=str(directory / f"{side}.spm"))
        for i in range(processor.get_piece_size()):
            vocab.setdefault(processor.id_to_piece(i), len(vocab))
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(
        str(directory / "source.spm"), str(directory / "target.spm"), str(directory / "vocab.json")
    )
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        pad_token_id=2,
        eos_token_id=0,
        decoder_start_token_id=2,
        forced_eos_token_id=0,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains ~50x faster on one thread
    try:
        torch.manual_seed(0)
        model = MarianMTModel(config)
        model.generation_config.num_beams = 1
        batch = tokenizer(list(pairs), text_target=list(pairs.values()), return_tensors="pt", padding=True)
        batch["labels"][batch["labels"] == tokenizer.pad_token_id] = -100
        inputs = tokenizer(list(pairs), return_tensors="pt", padding=True)
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for step in range(max_steps):
            model.train()
            model(**batch).loss.backward()
            optimiser.step()
            optimiser.zero_grad()
            if step % 50 == 49:
                model.eval()
                with torch.no_grad():
                    decoded = tokenizer.batch_decode(
                        model.generate(**inputs, max_new_tokens=16), skip_special_tokens=True
                    )
                if decoded == list(pairs.values()):
                    break
        else:
            raise RuntimeError(f"the tiny model did not learn its {len(pairs)} phrases in {max_steps} steps")
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "README.md").write_text(CARD)
    return directory
