"""A small word-level tokenizer with the GAR / PerceptionLM special tokens.

Built with the ``tokenizers`` library (WordLevel model) and wrapped as a
``transformers.PreTrainedTokenizerFast``, saved as ``tokenizer.json`` + ``tokenizer_config.json``
so that a checkpoint directory loads with ``AutoTokenizer.from_pretrained`` like real weights.

Text is lowercased, then split on whitespace and punctuation (``\\w+|[^\\w\\s]+``); the
option letters "A".."D" are added tokens matched as whole words BEFORE lowercasing, so answers
keep GAR-Bench's upper-case letters. Unknown words map to ``<unk>``. Decoding joins words with spaces and re-attaches
punctuation. Special tokens keep their Llama 3 / PerceptionLM / GAR spellings:
``<|begin_of_text|>``, ``<|end_of_text|>``, ``<|start_header_id|>``, ``<|end_header_id|>``,
``<|eot_id|>``, ``<|image|>``, ``<|video|>``, ``<|reserved_special_token_K|>`` (crop slots) and
``<Prompt0>``..``<Prompt{n-1}>``, ``<NO_Prompt>``.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from gar_ros.synthetic.tasks import (
    COLOUR_TEMPLATES, DESCRIBE_WITH_TEMPLATE, LETTERS, MC_SUFFIX, MOTION_QUESTION,
    SHAPE_TEMPLATES, SIZE_TEMPLATES, WHAT_IS_TEMPLATES,
)
from gar_ros.synthetic.vocabulary import COLOUR_NAMES, SHAPES, SIZE_NAMES

PAD, UNK = "<pad>", "<unk>"
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
START_HEADER, END_HEADER, EOT = "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"
IMAGE, VIDEO = "<|image|>", "<|video|>"

#: PerceptionLM chat template (Llama 3 headers, media tokens before the text).
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for item in message['content'] %}"
    "{%- if item['type'] == 'image' %}{{- '<|image|>' }}"
    "{%- elif item['type'] == 'video' %}{{- '<|video|>' }}"
    "{%- elif item['type'] == 'text' %}{{- item['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

#: Words beyond the task templates, so that nearby phrasings are not all ``<unk>``.
EXTRA_WORDS: tuple[str, ...] = tuple("""
a an the this that these those it its is are was were be been there here what which who whose
where when why how many much one two three four five six first second third last object objects
thing things item items region regions part parts shape shapes colour color colours colors size
sizes small large big tiny little medium left right top bottom above below under over on in at
of to from with without and or not no yes next near nearest far farthest closest close between
behind front leftmost rightmost topmost bottommost largest smallest larger smaller bigger same
different than as by move moved moving way direction up down still describe name tell me show
image picture masked detail details some i am curious about question options option answer
correct letter directly s do does did can could please identify brief briefly shown visible see
you find other another each every only both all none any user assistant system material made
texture pattern have has relationship relation camera middle closest
""".split())


def task_words() -> list[str]:
    """Every word the synthetic tasks use (templates, names, letters)."""
    text = " ".join([*COLOUR_TEMPLATES, *SHAPE_TEMPLATES, *SIZE_TEMPLATES, *WHAT_IS_TEMPLATES,
                     DESCRIBE_WITH_TEMPLATE, MC_SUFFIX,
                     MOTION_QUESTION, "Question Options Which one among is the leftmost",
                     "Which object is left of right of above below has the same colour as",
                     "What is the colour shape of Is left of Describe this masked region in "
                     "detail There are some objects I am curious about",
                     " ".join(COLOUR_NAMES), " ".join(SHAPES), " ".join(SIZE_NAMES)])
    return [t for t, _ in pre_tokenizers.Whitespace().pre_tokenize_str(text)]


def special_tokens(prompt_numbers: int = 5, reserved: int = 16) -> list[str]:
    """Special tokens in id order after the words: Llama headers, media, crop slots, prompts."""
    toks = [BOS, EOS, START_HEADER, END_HEADER, EOT, IMAGE, VIDEO]
    toks += [f"<|reserved_special_token_{k}|>" for k in range(reserved)]
    toks += [f"<Prompt{i}>" for i in range(prompt_numbers)] + ["<NO_Prompt>"]
    return toks


def build_tokenizer(extra_words: Iterable[str] = (), prompt_numbers: int = 5,
                    reserved: int = 16) -> PreTrainedTokenizerFast:
    """Word-level tokenizer: ids 0/1 = pad/unk, then sorted lowercase words, the option letters,
    then :func:`special_tokens`."""
    words = {w.lower() for w in [*task_words(), *EXTRA_WORDS, *extra_words]}
    words.update({".", ",", "?", ":", ";", "'", "!", "-", "(", ")"})
    words -= {L.lower() for L in LETTERS} - {"a"}
    vocab = {PAD: 0, UNK: 1}
    for w in sorted(words):
        vocab.setdefault(w, len(vocab))
    for letter in LETTERS:
        vocab[letter] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.add_tokens([AddedToken(L, single_word=True, normalized=False) for L in LETTERS])
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    specials = special_tokens(prompt_numbers, reserved)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOT, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=specials, chat_template=CHAT_TEMPLATE,
    )
    tok.add_special_tokens({"additional_special_tokens": specials})
    return tok


def save_tokenizer(tok: PreTrainedTokenizerFast, directory: str | Path) -> None:
    """Write tokenizer.json / tokenizer_config.json / special_tokens_map.json into directory."""
    tok.save_pretrained(str(directory))
