"""Transformers: DeiT-Tiny (ViT-Ti/16), a BERT-base encoder layer, Llama decoder layers.

Counting: Linear layers run on ``tokens`` rows; attention is two :class:`MatMul` layers per head
(scores ``Q K^T`` and context ``P V``) over the full ``tokens x keys`` rectangle (a causal mask
is not exploited). Softmax, LayerNorm/RMSNorm, GELU/SiLU and RoPE are vector work that is not
modelled as layers; residual adds and the SwiGLU product are :class:`Eltwise` layers. Parameters
count Linear/Conv weights and biases only: position/class embeddings and norm scales are
excluded (each test states the difference to the published total).
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.errors import WorkloadError
from codesign.workloads.layers import Conv2d, Eltwise, Layer, Linear, MatMul, Network
from codesign.workloads.zoo import register


def _encoder_block(layers: list[Layer], name: str, tokens: int, dim: int, heads: int, mlp: int,
                   fused_qkv: bool) -> None:
    """Pre/post-norm Transformer encoder block (the norms are not layers)."""
    hd = dim // heads
    if fused_qkv:
        layers.append(Linear(f"{name}.attn.qkv", in_features=dim, out_features=3 * dim, tokens=tokens))
    else:
        for p in ("query", "key", "value"):
            layers.append(Linear(f"{name}.attn.{p}", in_features=dim, out_features=dim, tokens=tokens))
    layers.append(MatMul(f"{name}.attn.scores", m=tokens, k=hd, n=tokens, heads=heads))
    layers.append(MatMul(f"{name}.attn.context", m=tokens, k=tokens, n=hd, heads=heads))
    layers.append(Linear(f"{name}.attn.proj", in_features=dim, out_features=dim, tokens=tokens))
    layers.append(Eltwise(f"{name}.add1", elements=tokens * dim))
    layers.append(Linear(f"{name}.mlp.fc1", in_features=dim, out_features=mlp, tokens=tokens))
    layers.append(Linear(f"{name}.mlp.fc2", in_features=mlp, out_features=dim, tokens=tokens))
    layers.append(Eltwise(f"{name}.add2", elements=tokens * dim))


@register("deit_tiny", description="DeiT-Tiny / ViT-Ti/16 (224x224, 197 tokens, dim 192, 12 blocks, 3 heads)",
          source="Touvron et al., ICML 2021 (DeiT-Ti: 5 M params, 1.3 GFLOPs); timm deit_tiny_patch16_224: "
                 "5,717,416 params (5,669,800 Linear/Conv + 37,824 pos-embed + 192 cls + 9,600 LayerNorm), "
                 "1.3 GMACs",
          default_input="3x224x224")
def deit_tiny(batch: int = 1, resolution: int = 224, depth: int = 12, dim: int = 192, heads: int = 3,
              mlp: int = 768, classes: int = 1000) -> Network:
    patch = 16
    layers: list[Layer] = [Conv2d("patch_embed", in_channels=3, out_channels=dim, in_h=resolution,
                                  in_w=resolution, kernel=patch, stride=patch)]
    tokens = (resolution // patch) ** 2 + 1  # + class token
    for i in range(depth):
        _encoder_block(layers, f"blocks.{i}", tokens, dim, heads, mlp, fused_qkv=True)
    layers.append(Linear("head", in_features=dim, out_features=classes, tokens=1))  # class token only
    return Network("deit_tiny", tuple(layers), batch=batch, input_shape=(3, resolution, resolution))


@register("bert_base_layer", description="one BERT-base encoder layer (hidden 768, 12 heads, FFN 3072) at seq_len",
          source="Devlin et al., NAACL 2019 (BERT-base: L=12, H=768, A=12, 110 M params); HF bert-base-uncased "
                 "layer: 7,087,872 params (7,084,800 Linear + 3,072 LayerNorm)",
          default_input="seq_len=128")
def bert_base_layer(batch: int = 1, seq_len: int = 128) -> Network:
    _check_tokens("seq_len", seq_len)
    layers: list[Layer] = []
    _encoder_block(layers, "layer", seq_len, 768, 12, 3072, fused_qkv=False)
    return Network(f"bert_base_layer_s{seq_len}", tuple(layers), batch=batch, input_shape=(seq_len, 768))


@dataclass(frozen=True)
class LlamaConfig:
    """The shape of one Llama decoder layer (Hugging Face ``config.json`` names)."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


LLAMA_3_2_1B = LlamaConfig("llama3_2_1b", 2048, 8192, 32, 8)
LLAMA_2_7B = LlamaConfig("llama2_7b", 4096, 11008, 32, 32)


def _check_tokens(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WorkloadError(f"{name} must be a positive integer, not {value!r}")
    return value


def llama_layer(cfg: LlamaConfig, *, phase: str, seq_len: int, kv_len: int | None = None,
                batch: int = 1) -> Network:
    """One decoder layer. ``prefill``: ``seq_len`` tokens attend to ``kv_len`` keys (default
    ``seq_len``); ``decode``: 1 token attends to ``kv_len`` keys (default ``seq_len``), i.e. the
    KV cache including the new token."""
    if phase not in ("prefill", "decode"):
        raise WorkloadError(f"phase must be 'prefill' or 'decode', not {phase!r}")
    _check_tokens("seq_len", seq_len)
    keys = _check_tokens("kv_len", seq_len if kv_len is None else kv_len)
    tokens = seq_len if phase == "prefill" else 1
    if keys < tokens:
        raise WorkloadError(f"kv_len must be at least the {tokens} query tokens, not {keys!r}")
    d, hd, kvd = cfg.hidden_size, cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    heads, ff = cfg.num_attention_heads, cfg.intermediate_size
    layers: list[Layer] = [
        Linear("self_attn.q_proj", in_features=d, out_features=d, tokens=tokens, bias=False),
        Linear("self_attn.k_proj", in_features=d, out_features=kvd, tokens=tokens, bias=False),
        Linear("self_attn.v_proj", in_features=d, out_features=kvd, tokens=tokens, bias=False),
        # grouped-query attention: each of the query heads reads its group's K/V
        MatMul("self_attn.scores", m=tokens, k=hd, n=keys, heads=heads),
        MatMul("self_attn.context", m=tokens, k=keys, n=hd, heads=heads),
        Linear("self_attn.o_proj", in_features=d, out_features=d, tokens=tokens, bias=False),
        Eltwise("residual1", elements=tokens * d),
        Linear("mlp.gate_proj", in_features=d, out_features=ff, tokens=tokens, bias=False),
        Linear("mlp.up_proj", in_features=d, out_features=ff, tokens=tokens, bias=False),
        Eltwise("mlp.act_mul", elements=tokens * ff, op="mul"),
        Linear("mlp.down_proj", in_features=ff, out_features=d, tokens=tokens, bias=False),
        Eltwise("residual2", elements=tokens * d),
    ]
    name = f"{cfg.name}_{phase}_s{seq_len}" + (f"_kv{keys}" if keys != seq_len else "")
    return Network(name, tuple(layers), batch=batch, input_shape=(tokens, d))


_L32_SRC = ("Meta Llama 3.2 model card (1.23 B params); HF meta-llama/Llama-3.2-1B config: hidden 2048, "
            "intermediate 8192, 32 heads, 8 KV heads, 16 layers; per layer 60,817,408 Linear params "
            "(+4,096 RMSNorm); model 1,235,814,400 with tied 128,256x2048 embeddings")
_L2_SRC = ("Touvron et al., arXiv:2307.09288 (Llama 2 7B); HF meta-llama/Llama-2-7b-hf config: hidden 4096, "
           "intermediate 11008, 32 heads (MHA), 32 layers; per layer 202,375,168 Linear params (+8,192 "
           "RMSNorm); model 6,738,415,616 with 32,000x4096 embeddings and head")


@register("llama3_2_1b_prefill", description="Llama-3.2-1B decoder layer, prefill of seq_len tokens (GQA 32/8)",
          source=_L32_SRC, default_input="seq_len=512")
def llama3_2_1b_prefill(batch: int = 1, seq_len: int = 512, kv_len: int | None = None) -> Network:
    return llama_layer(LLAMA_3_2_1B, phase="prefill", seq_len=seq_len, kv_len=kv_len, batch=batch)


@register("llama3_2_1b_decode", description="Llama-3.2-1B decoder layer, decode of 1 token over kv_len keys",
          source=_L32_SRC, default_input="kv_len=512")
def llama3_2_1b_decode(batch: int = 1, kv_len: int = 512) -> Network:
    return llama_layer(LLAMA_3_2_1B, phase="decode", seq_len=kv_len, kv_len=kv_len, batch=batch)


@register("llama2_7b_prefill", description="Llama-2-7B decoder layer, prefill of seq_len tokens (MHA 32 heads)",
          source=_L2_SRC, default_input="seq_len=512")
def llama2_7b_prefill(batch: int = 1, seq_len: int = 512, kv_len: int | None = None) -> Network:
    return llama_layer(LLAMA_2_7B, phase="prefill", seq_len=seq_len, kv_len=kv_len, batch=batch)


@register("llama2_7b_decode", description="Llama-2-7B decoder layer, decode of 1 token over kv_len keys",
          source=_L2_SRC, default_input="kv_len=512")
def llama2_7b_decode(batch: int = 1, kv_len: int = 512) -> Network:
    return llama_layer(LLAMA_2_7B, phase="decode", seq_len=kv_len, kv_len=kv_len, batch=batch)
