"""The word-level tokenizer of the tiny model: special tokens, round trips, save/load."""
from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from gar_ros.synthetic.tasks import make_choice, make_describe, make_free, make_motion
from gar_ros.training.tokenizer import build_tokenizer, special_tokens


def test_special_tokens_are_single_ids() -> None:
    tok = build_tokenizer()
    for t in special_tokens():
        ids = tok(t, add_special_tokens=False).input_ids
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == t
    ids = tok.convert_tokens_to_ids([f"<Prompt{i}>" for i in range(5)] + ["<NO_Prompt>"])
    assert ids == list(range(ids[0], ids[0] + 6))


def test_every_task_word_is_known_and_answers_round_trip() -> None:
    tok = build_tokenizer()
    samples = [*make_describe(1), make_choice(2), make_free(3), make_motion(4)]
    samples += [make_choice(s) for s in range(5, 40)] + [make_free(s) for s in range(40, 60)]
    for s in samples:
        for text in (s.question or "", s.answer):
            ids = tok(text, add_special_tokens=False).input_ids
            assert tok.unk_token_id not in ids, text
        assert tok.decode(tok(s.answer, add_special_tokens=False).input_ids) == s.answer
    assert tok("zyzzyva", add_special_tokens=False).input_ids == [tok.unk_token_id]


def test_save_and_load_with_auto_tokenizer(tmp_path: Path) -> None:
    tok = build_tokenizer()
    tok.save_pretrained(str(tmp_path))
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    text = "There are some objects I am curious about: <Prompt0>; <|reserved_special_token_2|>"
    assert loaded(text, add_special_tokens=False).input_ids == tok(text, add_special_tokens=False).input_ids
    chat = loaded.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}],
        add_generation_prompt=True, tokenize=False)
    assert chat.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>hi")
    assert chat.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
