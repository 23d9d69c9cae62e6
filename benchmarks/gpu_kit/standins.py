"""Stand-in models for benchmarks/gpu.py, made offline when a task's weights are not at hand.

Throughput depends on a network's shape, not on its weights' values, so where the real
weights cannot be had (a lent GPU machine has no internet and no room for every package),
the benchmark measures the same architecture with random weights and says so. Each
stand-in goes through the task's real loading code:

- torchvision models (`torchvision:resnet50`, `torchvision:fasterrcnn_resnet50_fpn_v2`): a
  random state_dict saved where torchvision's loader looks before downloading (a private
  torch hub cache, TORCH_HOME), so the source URI is the real one;
- EfficientNet-Lite0 (the default classifier): a PAIS snapshot of PAIS's own architecture;
- Marian: a transformers directory (`opus-mt-en-es-random`) with SentencePiece vocabularies
  trained here; `full` gives Marian-base's shape (6+6 layers, 512 wide, 58,101 outputs),
  otherwise the tests' tiny one;
- VITS (speech): a transformers VitsModel, MMS-TTS's shape when `full`, its reading pace set
  so that a sentence lasts about as long as spoken English;
- recommendation: iALS trained by `python -m models.recommendation train` on synthetic
  interactions (popular items more often, as in real data).

Random weights change what comes out, not what it costs, with one exception said in the
results: a random Marian never predicts end-of-sentence, so each sentence runs to the
engine's length cap (2 x input + 16 tokens), about twice a real translation.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

RANDOM_CARD = "---\nlicense: other\n---\n# random weights made by benchmarks/gpu.py (throughput only)\n"

ENGLISH = [
    "The weather is nice today and we are going to the beach.",
    "I would like to buy a new car before the end of the year.",
    "Where is the train station closest to the old market?",
    "My sister works in a hospital in the centre of the city.",
    "Thank you very much for your help with the garden yesterday.",
    "The children played football in the park until it was dark.",
    "Could you send me the report before the meeting on Monday?",
    "Our neighbours have a small black cat that sleeps all day.",
    "The museum opens at nine and closes early on Sundays.",
    "We cooked rice with vegetables and drank fresh orange juice.",
    "Please turn off the lights when you leave the office.",
    "The new bridge across the river was finished last summer.",
]
SPANISH = [
    "Hace buen tiempo hoy y vamos a la playa.",
    "Me gustaría comprar un coche nuevo antes de fin de año.",
    "¿Dónde está la estación de tren más cercana al mercado viejo?",
    "Mi hermana trabaja en un hospital en el centro de la ciudad.",
    "Muchas gracias por tu ayuda con el jardín ayer.",
    "Los niños jugaron al fútbol en el parque hasta que oscureció.",
    "¿Podrías enviarme el informe antes de la reunión del lunes?",
    "Nuestros vecinos tienen un gato negro pequeño que duerme todo el día.",
    "El museo abre a las nueve y cierra temprano los domingos.",
    "Cocinamos arroz con verduras y bebimos zumo de naranja fresco.",
    "Por favor apaga las luces cuando salgas de la oficina.",
    "El puente nuevo sobre el río se terminó el verano pasado.",
]

MARIAN_BASE = {
    "d_model": 512,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_attention_heads": 8,
    "decoder_attention_heads": 8,
    "encoder_ffn_dim": 2048,
    "decoder_ffn_dim": 2048,
    "max_position_embeddings": 512,
}
MARIAN_BASE_VOCAB = 58101  # Helsinki-NLP/opus-mt-en-de's output layer

VITS_VOCAB = ["<pad>", " ", *"abcdefghijklmnopqrstuvwxyz", "'", ".", ",", "?", "<unk>"]
VITS_TINY = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "window_size": 2,
    "ffn_dim": 32,
    "flow_size": 16,
    "spectrogram_bins": 17,
    "upsample_initial_channel": 16,
    "upsample_rates": [4, 4],
    "upsample_kernel_sizes": [8, 8],
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3]],
    "prior_encoder_num_flows": 1,
    "prior_encoder_num_wavenet_layers": 1,
    "posterior_encoder_num_wavenet_layers": 1,
    "duration_predictor_num_flows": 1,
    "duration_predictor_filter_channels": 16,
    "depth_separable_num_layers": 1,
}
# spoken English: about 14 characters a second
SECONDS_PER_CHARACTER = 1 / 14


def hub_checkpoint(arch: str, torch_home: Path | None = None) -> Path:
    """Where torchvision's loader looks for `arch`'s default weights (TORCH_HOME's hub cache,
    or `torch_home`'s)."""
    import torch
    from torchvision.models import get_model_weights

    weights = get_model_weights(arch).DEFAULT
    hub = Path(torch_home) / "hub" if torch_home else Path(torch.hub.get_dir())
    return hub / "checkpoints" / Path(weights.url).name


def random_torchvision_checkpoint(arch: str, torch_home: Path) -> Path:
    """A random state_dict of `arch` where torchvision looks for its default weights under
    `torch_home` (set TORCH_HOME to it)."""
    import torch
    from torchvision.models import get_model

    path = hub_checkpoint(arch, torch_home)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    try:  # detection models: no backbone download either
        model = get_model(arch, weights=None, weights_backbone=None)
    except TypeError:
        model = get_model(arch, weights=None)
    torch.save(model.state_dict(), path)
    return path


def random_efficientnet_lite0(directory: Path) -> Path:
    """A PAIS classification snapshot of EfficientNet-Lite0 with random weights."""
    import torch

    from models.classification import loaders
    from models.info import ModelInfo

    spec = loaders.PACKAGED["efficientnet-lite0"]
    torch.manual_seed(0)
    info = ModelInfo(
        task="classification",
        name="efficientnet-lite0-random",
        source=str(directory),
        version="random-weights",
        licence="none: random weights",
        origin="EfficientNet-Lite0 architecture (PAIS's) with random weights, made by benchmarks/gpu.py",
    )
    loaded = loaders.LoadedClassifier(
        spec.build(), loaders.imagenet_labels(), spec.preprocess, info, arch="packaged:efficientnet-lite0"
    )
    loaders.save(loaded, directory)
    return directory


def random_marian(directory: Path, full: bool) -> Path:
    """A Marian en->es model directory with random weights. Name it `opus-mt-en-es-...`:
    the translation engine reads the pair from the name."""
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    from tests.tiny_seq2seq import TINY, train_sentencepiece

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}  # Marian's special tokens first
    for side, texts in (("source", ENGLISH), ("target", SPANISH)):
        train_sentencepiece(directory, side, texts, vocab, vocab_size=400).rename(directory / f"{side}.spm")
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(
        str(directory / "source.spm"), str(directory / "target.spm"), str(directory / "vocab.json")
    )
    shape = MARIAN_BASE if full else TINY
    config = MarianConfig(
        vocab_size=max(len(vocab), MARIAN_BASE_VOCAB if full else 0),
        **shape,
        pad_token_id=2,
        eos_token_id=0,
        decoder_start_token_id=2,
        forced_eos_token_id=0,
    )
    torch.manual_seed(0)
    model = MarianMTModel(config)
    model.generation_config.num_beams = 1  # greedy, as the reference figure
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "README.md").write_text(RANDOM_CARD)
    return directory


def random_vits(directory: Path, full: bool, sample: str = ENGLISH[0]) -> Path:
    """A VITS voice directory (16 kHz, characters, no phonemizer) with random weights, its
    speaking rate set so that `sample` lasts as long as spoken English would."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(VITS_VOCAB)}))
    tokenizer = VitsTokenizer(
        str(directory / "vocab.json"), language="eng", add_blank=True, normalize=True, phonemize=False
    )
    shape = {} if full else VITS_TINY  # VitsConfig's defaults are MMS-TTS's shape
    config = VitsConfig(vocab_size=len(VITS_VOCAB), sampling_rate=16000, noise_scale_duration=0.0, **shape)
    torch.manual_seed(0)
    model = VitsModel(config).eval()
    with torch.inference_mode():
        ids = torch.tensor([tokenizer(sample.lower()).input_ids])
        frames = int(model(input_ids=ids).sequence_lengths[0])
    seconds = max(frames, 1) / config.sampling_rate
    model.config.speaking_rate = seconds / (len(sample) * SECONDS_PER_CHARACTER)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "README.md").write_text(RANDOM_CARD)
    return directory


def synthetic_interactions(path: Path, users: int, items: int, per_user: int, seed: int = 0) -> Path:
    """user,item rows: each user `per_user` distinct items, popular items more often."""
    rng = random.Random(seed)
    with path.open("w") as out:
        out.write("user,item\n")
        for user in range(users):
            chosen = {int(items * rng.random() ** 2) for _ in range(per_user)}
            out.writelines(f"u{user},i{item}\n" for item in sorted(chosen))
    return path


def synthetic_recommender(
    directory: Path, users: int, items: int, per_user: int, device: str, python: str = sys.executable
) -> Path:
    """An iALS snapshot trained by the training CLI on synthetic interactions (no item text,
    so no text encoder is needed)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    table = synthetic_interactions(directory.parent / f"{directory.name}.csv", users, items, per_user)
    command = [
        python, "-m", "models.recommendation", "train", "--interactions", str(table),
        "--name", "bench-synthetic", "--output", str(directory), "--no-store", "--device", device,
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"training the synthetic recommender failed:\n{done.stdout}\n{done.stderr}")
    return directory
