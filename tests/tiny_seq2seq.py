"""Tiny translation models made on the spot: SentencePiece vocabularies trained on a few
phrases (character vocabularies for NLLB), a 1-layer Marian, M2M-100 or NLLB trained until
it reproduces them, saved with
`save_pretrained` — so the neural engine is tested through the real transformers loading,
tokenisation and generation code (language tokens included), offline and in seconds."""

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

# M2M-100: one English phrase, two targets chosen by the forced target-language token
EN_TO = {
    "de": {"the red house": "das rote Haus", "good morning": "guten Morgen"},
    "cs": {"the red house": "červený dům", "good morning": "dobré ráno"},
}

# NLLB: FLORES-200 language tokens choose the target
EN_TO_FLORES = {
    "spa_Latn": {"the red house": "la casa roja", "good morning": "buenos días"},
    "deu_Latn": {"the red house": "das rote Haus", "good morning": "guten Morgen"},
}

# one layer each way, 32 wide: enough to memorise a few phrases, trained in seconds
TINY = {
    "d_model": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "max_position_embeddings": 64,
}

CARD = "---\nlicense: apache-2.0\n---\n# tiny test model, made by tests/tiny_seq2seq.py\n"


def train_sentencepiece(
    directory: Path, name: str, texts: list[str], vocab: dict[str, int], vocab_size: int = 40
) -> Path:
    """Train a small SentencePiece model on `texts`; add its pieces to `vocab`."""
    corpus = directory / f"{name}.txt"
    corpus.write_text("\n".join(texts * 3) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(directory / name),
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        pad_id=-1,
        minloglevel=2,
    )
    corpus.unlink()
    (directory / f"{name}.vocab").unlink()
    model = directory / f"{name}.model"
    processor = spm.SentencePieceProcessor(model_file=str(model))
    for i in range(processor.get_piece_size()):
        vocab.setdefault(processor.id_to_piece(i), len(vocab))
    return model


def _untrained(model_class, config):
    torch.manual_seed(0)
    model = model_class(config)
    model.generation_config.num_beams = 1  # greedy: what the training check decodes with
    return model


def _labelled(tokenizer, table: dict[str, str]):
    """Inputs with labels; padding left out of the loss."""
    batch = tokenizer(list(table), text_target=list(table.values()), return_tensors="pt", padding=True)
    batch["labels"][batch["labels"] == tokenizer.pad_token_id] = -100
    return batch


def _train(model, batches, reproduced, max_steps: int) -> None:
    """Train on `batches` until `reproduced()` says every phrase comes out right."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains ~50x faster on one thread
    try:
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for step in range(max_steps):
            model.train()
            for batch in batches:
                model(**batch).loss.backward()
            optimiser.step()
            optimiser.zero_grad()
            if step % 50 == 49:
                model.eval()
                with torch.no_grad():
                    if reproduced():
                        return
        raise RuntimeError(f"the tiny model did not learn its phrases in {max_steps} steps")
    finally:
        torch.set_num_threads(threads)


def make_tiny_marian(directory: Path, pairs: dict[str, str] = EN_ES, max_steps: int = 2000) -> Path:
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}  # Marian's special tokens first
    for side, texts in (("source", list(pairs)), ("target", list(pairs.values()))):
        train_sentencepiece(directory, side, texts, vocab).rename(directory / f"{side}.spm")
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(
        str(directory / "source.spm"), str(directory / "target.spm"), str(directory / "vocab.json")
    )
    config = MarianConfig(
        vocab_size=len(vocab),
        **TINY,
        pad_token_id=2,
        eos_token_id=0,
        decoder_start_token_id=2,
        forced_eos_token_id=0,
    )
    model = _untrained(MarianMTModel, config)
    batch = _labelled(tokenizer, pairs)
    inputs = tokenizer(list(pairs), return_tensors="pt", padding=True)

    def reproduced() -> bool:
        generated = model.generate(**inputs, max_new_tokens=16)
        return tokenizer.batch_decode(generated, skip_special_tokens=True) == list(pairs.values())

    _train(model, [batch], reproduced, max_steps)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "README.md").write_text(CARD)
    return directory


def _many_to_many_model(
    directory: Path, tokenizer, vocab_size: int, phrases: dict[str, dict[str, str]], bos_id, max_steps: int
):
    """An M2M-100 architecture (M2M-100's and NLLB's) trained to translate each English
    phrase into every language of `phrases`, chosen by the forced target-language token."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    config = M2M100Config(
        vocab_size=vocab_size,
        **TINY,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    model = _untrained(M2M100ForConditionalGeneration, config)
    source = tokenizer.src_lang
    batches = []
    for target, table in phrases.items():
        tokenizer.tgt_lang = target
        batches.append(_labelled(tokenizer, table))
    tokenizer.src_lang = source

    def reproduced() -> bool:
        for target, table in phrases.items():
            inputs = tokenizer(list(table), return_tensors="pt", padding=True)
            bos = bos_id(target)
            rows = model.generate(**inputs, forced_bos_token_id=bos, max_new_tokens=24).tolist()
            rows = [[token for token in row if token != bos] for row in rows]
            if tokenizer.batch_decode(rows, skip_special_tokens=True) != list(table.values()):
                return False
        return True

    _train(model, batches, reproduced, max_steps)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "README.md").write_text(CARD)
    return directory


def make_tiny_m2m100(
    directory: Path, phrases: dict[str, dict[str, str]] = EN_TO, max_steps: int = 3000
) -> Path:
    """An M2M-100 with the 8 language tokens of the `wmt21` code list (en, de, cs, ...),
    trained to translate each English phrase into every language of `phrases`."""
    from transformers import M2M100Tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    texts = sorted({text for table in phrases.values() for pair in table.items() for text in pair})
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    spm_file = train_sentencepiece(directory, "sentencepiece.bpe", texts, vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = M2M100Tokenizer(
        str(directory / "vocab.json"), str(spm_file), language_codes="wmt21", num_madeup_words=0
    )
    tokenizer.src_lang = "en"
    vocab_size = max(tokenizer.lang_code_to_id.values()) + 1
    return _many_to_many_model(directory, tokenizer, vocab_size, phrases, tokenizer.get_lang_id, max_steps)


def make_tiny_nllb(
    directory: Path, phrases: dict[str, dict[str, str]] = EN_TO_FLORES, max_steps: int = 3000
) -> Path:
    """An NLLB: its tokenizer (transformers' NllbTokenizer, saved as tokenizer.json) with a
    character vocabulary and three FLORES-200 language tokens (eng_Latn and the targets)."""
    from transformers import NllbTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    texts = {text for table in phrases.values() for pair in table.items() for text in pair}
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for character in sorted({c for text in texts for c in text.replace(" ", "▁")} | {"▁"}):
        vocab.setdefault(character, len(vocab))
    tokenizer = NllbTokenizer(
        vocab=vocab, merges=[], extra_special_tokens=["eng_Latn", *phrases], src_lang="eng_Latn"
    )
    return _many_to_many_model(
        directory, tokenizer, len(tokenizer), phrases, tokenizer.convert_tokens_to_ids, max_steps
    )
