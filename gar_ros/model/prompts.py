"""GAR prompt text and its token ids, built piece by piece so that user text stays text.

Text layout (the official templates; ``<P>`` is a prompt token, ``[crop x N]`` the N crop tokens of
that prompt, N = replay_side**2, 256 for GAR):

- single-region description (``<Prompt1>`` by default)::

    There are some objects I am curious about: <P>;\\n<P>: [crop x N]Describe this masked region in detail.

- multi-region question over prompts a < b < ... (sorted; the official code iterates a set)::

    There are some objects I am curious about: <Pa>; <Pb>; \\n<Pa>: [crop x N]\\n<Pb>: [crop x N]\\n\\n{question}

The user turn is wrapped in the checkpoint's chat template (PerceptionLM's when it has none):
``[BOS] <|start_header_id|>system<|end_header_id|>\\n\\n{system}<|eot_id|><|start_header_id|>user
<|end_header_id|>\\n\\n<|image|>{text}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n``.
The template's own text is tokenised as the official processor does (its special tokens count);
``<|image|>`` is expanded to the image-token count. The official inference path then lets the
tokenizer add its BOS in front of the template's one: two BOS tokens (``double_bos``).

Pieces of trusted text are tokenised separately; this equals tokenising the whole string because
special tokens split the text the same way. User text (questions) is tokenised with
``split_special_tokens=True`` so that typed ``<|image|>``, ``<PromptK>`` or reserved tokens stay
plain text; only the ``<PromptK>`` references that the caller allows become prompt ids.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gar_ros.errors import CheckpointError, QueryError

#: PerceptionLM's chat template (used when a checkpoint ships none); same output as PLM's.
DEFAULT_SYSTEM_MESSAGE = (
    "You are a helpful language and vision assistant. You are able to understand the visual content "
    "that the user provides, and assist the user with a variety of tasks using natural language."
)
PLM_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '" + DEFAULT_SYSTEM_MESSAGE + "' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system_message + '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- for part in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<|image|>' }}{%- endfor %}"
    "{%- for part in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<|video|>' }}{%- endfor %}"
    "{%- for part in message['content'] | selectattr('type', 'equalto', 'text') %}{{- part['text'] | trim }}{%- endfor %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

OBJECTS_INTRO = "There are some objects I am curious about: "
DESCRIBE_INSTRUCTION = "Describe this masked region in detail."
#: Prompt index used for single-region descriptions (official eval and demo default).
DESCRIBE_PROMPT_INDEX = 1
IMAGE_TOKEN = "<|image|>"
_TEXT_SENTINEL = "GARROSUSERTEXTSENTINEL"
_PROMPT_REF = re.compile(r"<Prompt(0|[1-9][0-9]*)>")

def prompt_token(index: int) -> str:
    return f"<Prompt{index}>"


@dataclass
class TemplateIds:
    """Token ids around the user text: ``prefix`` ends with one ``<|image|>`` placeholder."""

    prefix: list[int]
    suffix: list[int]
    image_pos: int


class PromptBuilder:
    """Turns GAR prompt pieces into token ids for one tokenizer/config pair."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        prompt_numbers: int,
        crop_tokens_ids: Sequence[int],
        replay_tokens: int,
        image_token_id: int,
        chat_template: str | None = None,
        double_bos: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.prompt_numbers = prompt_numbers
        self.crop_tokens_ids = list(crop_tokens_ids)
        self.replay_tokens = replay_tokens
        self.image_token_id = image_token_id
        self.chat_template = chat_template or PLM_CHAT_TEMPLATE
        self.double_bos = double_bos
        self.prompt_token_ids = self._lookup_prompt_tokens()
        self._template = self._template_ids()

    # ------------------------------------------------------------------ setup
    def _lookup_prompt_tokens(self) -> list[int]:
        ids = []
        unk = getattr(self.tokenizer, "unk_token_id", None)
        for k in range(self.prompt_numbers + 1):
            name = prompt_token(k) if k < self.prompt_numbers else "<NO_Prompt>"
            tid = self.tokenizer.convert_tokens_to_ids(name)
            if tid is None or (unk is not None and tid == unk):
                raise CheckpointError(f"tokenizer has no {name} token")
            ids.append(int(tid))
        for k, cid in enumerate(self.crop_tokens_ids):
            name = f"<|reserved_special_token_{k + 2}|>"
            tid = self.tokenizer.convert_tokens_to_ids(name)
            if tid is not None and tid != unk and int(tid) != cid:
                raise CheckpointError(f"tokenizer maps {name} to {tid}, config crop_tokens_ids[{k}] is {cid}")
        return ids

    def _encode_trusted(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def _template_ids(self) -> TemplateIds:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": _TEXT_SENTINEL}]}]
        try:
            rendered = self.tokenizer.apply_chat_template(
                messages, chat_template=self.chat_template, add_generation_prompt=True, tokenize=False
            )
        except Exception as err:  # jinja errors of a checkpoint's template
            raise CheckpointError(f"cannot render the chat template: {err}") from err
        if not isinstance(rendered, str) or rendered.count(_TEXT_SENTINEL) != 1:
            raise CheckpointError("the chat template does not place the user text exactly once")
        before, after = rendered.split(_TEXT_SENTINEL)
        if before.count(IMAGE_TOKEN) != 1 or IMAGE_TOKEN in after:
            raise CheckpointError("the chat template does not place one <|image|> before the user text")
        prefix = self._encode_trusted(before)
        suffix = self._encode_trusted(after)
        if self.image_token_id not in prefix:
            raise CheckpointError(f"<|image|> does not encode to image_token_id {self.image_token_id}")
        if self.double_bos:
            with_special = list(self.tokenizer.encode("", add_special_tokens=True))
            prefix = with_special + prefix
        return TemplateIds(prefix, suffix, prefix.index(self.image_token_id))

    # ------------------------------------------------------------------ pieces
    def crop_piece(self, index: int) -> list[int]:
        return [self.crop_tokens_ids[index]] * self.replay_tokens

    def user_text_ids(self, text: str, allowed_prompts: Sequence[int]) -> list[int]:
        """Tokenise user text: allowed ``<PromptK>`` become prompt ids, all else stays text.

        A reference to a prompt index that is not allowed raises :class:`QueryError`.
        """
        if not isinstance(text, str):
            raise QueryError(f"question must be a string, got {type(text).__name__}")
        if "\x00" in text:
            raise QueryError("question contains NUL characters")
        allowed = set(allowed_prompts)
        ids: list[int] = []
        pos = 0
        for match in _PROMPT_REF.finditer(text):
            k = int(match.group(1))
            if k not in allowed:
                raise QueryError(
                    f"question refers to {match.group(0)} but only "
                    f"{', '.join(prompt_token(i) for i in sorted(allowed)) or 'no prompts'} are given"
                )
            ids += self._encode_user(text[pos : match.start()])
            ids.append(self.prompt_token_ids[k])
            pos = match.end()
        ids += self._encode_user(text[pos:])
        return ids

    def _encode_user(self, text: str) -> list[int]:
        if not text:
            return []
        out = self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)
        return list(out["input_ids"])

    def describe_pieces(
        self, index: int = DESCRIBE_PROMPT_INDEX, crop: Callable[[int], list[int]] | None = None
    ) -> list[str | list[int]]:
        """Single-region description; ``crop(k)`` gives prompt k's crop-token piece (default:
        ``crop_piece``; the clip prompt passes its per-frame blocks)."""
        p = [self.prompt_token_ids[index]]
        return [OBJECTS_INTRO, p, ";\n", p, ": ", (crop or self.crop_piece)(index), DESCRIBE_INSTRUCTION]

    def question_pieces(
        self, indices: Sequence[int], question: str, crop: Callable[[int], list[int]] | None = None
    ) -> list[str | list[int]]:
        """Multi-region question over prompts ``indices`` (written in ascending order)."""
        order = sorted(set(indices))
        if not isinstance(question, str) or not question.strip():
            raise QueryError("question is empty")
        crop = crop or self.crop_piece
        pieces: list[str | list[int]] = []
        if order:
            pieces.append(OBJECTS_INTRO)
            for k in order:
                pieces += [[self.prompt_token_ids[k]], "; "]
            pieces.append("\n")
            for k in order:
                pieces += [[self.prompt_token_ids[k]], ": ", crop(k), "\n"]
            pieces.append("\n")
        pieces.append(self.user_text_ids(question.strip(), order))
        return pieces

    # ------------------------------------------------------------------ assembly
    def pieces_ids(self, pieces: Sequence[str | list[int]]) -> list[int]:
        ids: list[int] = []
        text = ""
        for piece in pieces:  # adjacent strings are one text segment, as in the official string
            if isinstance(piece, str):
                text += piece
                continue
            ids += self._encode_trusted(text) + list(piece)
            text = ""
        return ids + self._encode_trusted(text)

    def build(self, user_ids: list[int], image_tokens: int) -> list[int]:
        """Full input ids: template prefix (``<|image|>`` expanded to ``image_tokens``) + user + suffix."""
        t = self._template
        return (
            t.prefix[: t.image_pos]
            + [self.image_token_id] * image_tokens
            + t.prefix[t.image_pos + 1 :]
            + user_ids
            + t.suffix
        )

    def describe_ids(self, image_tokens: int, index: int = DESCRIBE_PROMPT_INDEX) -> list[int]:
        return self.build(self.pieces_ids(self.describe_pieces(index)), image_tokens)

    def question_ids(self, image_tokens: int, indices: Sequence[int], question: str) -> list[int]:
        return self.build(self.pieces_ids(self.question_pieces(indices, question)), image_tokens)
