"""Chat templates: a conversation (list of {"role", "content"} messages) -> one prompt string, by a Jinja
template stored with the tokenizer, as transformers' `apply_chat_template` does.

Templates run in Jinja's immutable sandbox (a template file cannot touch Python objects), with the same
environment transformers gives them: trim_blocks/lstrip_blocks, `{% break %}`/`{% continue %}`, `tojson`,
`raise_exception(msg)` and `strftime_now(fmt)`. Files: chat_template.jinja (the default template) plus
additional_chat_templates/<name>.jinja, or "chat_template" in tokenizer_config.json (a string, or a list of
{"name", "template"}); a .jinja file wins over the config entry.
"""
from __future__ import annotations

import json
import os
from datetime import datetime
from functools import lru_cache

JINJA_FILE = "chat_template.jinja"
EXTRA_DIR = "additional_chat_templates"


@lru_cache(maxsize=32)
def _compile(template: str):
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def pick_template(own, chat_template: str | None) -> str:
    """The template to use: `chat_template` names one of the tokenizer's templates or is a template itself;
    without it, the tokenizer's (its "default" one when it has several)."""
    if isinstance(own, dict) and chat_template in own:
        return own[chat_template]
    if chat_template is not None:
        return chat_template
    if isinstance(own, dict):
        if "default" not in own:
            raise ValueError(f"this tokenizer has several chat templates ({', '.join(own)}) and none named 'default'; "
                             f"pass chat_template=<name>")
        return own["default"]
    if own is None:
        raise ValueError("this tokenizer has no chat template: set tokenizer.chat_template or pass chat_template=")
    return own


def render(template: str, conversation: list, *, add_generation_prompt=False, continue_final_message=False,
           tools=None, documents=None, **variables) -> str:
    """One conversation through the template. With continue_final_message the text ends right after the last
    message's content (no end-of-turn tokens), so a model continues that message."""
    if add_generation_prompt and continue_final_message:
        raise ValueError("continue_final_message and add_generation_prompt cannot both be set: the first continues "
                         "the last message, the second starts a new one")
    messages = [dict(m) if hasattr(m, "keys") else m for m in conversation]
    text = _compile(template).render(messages=messages, tools=tools, documents=documents,
                                     add_generation_prompt=add_generation_prompt, **variables)
    if continue_final_message:
        final = messages[-1]["content"]
        if isinstance(final, (list, tuple)):  # multimodal-style content: its text parts
            final = "".join(part.get("text", "") for part in final if isinstance(part, dict))
        if final.strip() not in text:
            raise ValueError("continue_final_message=True, but the last message's content does not appear in the "
                             "rendered chat (the template changes it)")
        at = text.rindex(final.strip())
        # Keep trailing whitespace only when the template kept it too (templates that `trim` drop it).
        keep = final.lstrip() if text[at:at + len(final.lstrip())] == final.lstrip() else final.strip()
        text = text[:at + len(keep)]
    return text


def is_batch(conversation) -> bool:
    return isinstance(conversation, (list, tuple)) and bool(conversation) and (
        isinstance(conversation[0], (list, tuple)) or hasattr(conversation[0], "messages"))


# ---- files ------------------------------------------------------------------------------------------------
def read_templates(config: dict, find) -> str | dict | None:
    """The chat template(s) of a tokenizer folder; `find(name)` gives a file's local path or None."""
    templates = config.get("chat_template")
    if isinstance(templates, list):
        templates = {t["name"]: t["template"] for t in templates}
    jinja = find(JINJA_FILE)
    if jinja:
        with open(jinja, encoding="utf-8") as f:
            templates = f.read()
    extra = find(EXTRA_DIR)
    if extra is None and jinja:
        folder = os.path.join(os.path.dirname(jinja), EXTRA_DIR)
        extra = folder if os.path.isdir(folder) else None
    if extra and os.path.isdir(extra):
        named = {}
        for name in sorted(os.listdir(extra)):
            if name.endswith(".jinja"):
                with open(os.path.join(extra, name), encoding="utf-8") as f:
                    named[name[: -len(".jinja")]] = f.read()
        if named:
            templates = {**({"default": templates} if isinstance(templates, str) else templates or {}), **named}
    return templates


def write_templates(templates, directory: str, write_text, save_jinja_files: bool = True) -> tuple[dict, list[str]]:
    """(entries for tokenizer_config.json, paths written). As .jinja files, or inside the config when
    save_jinja_files=False (several templates as a list of {"name", "template"})."""
    if templates is None:
        return {}, []
    if not save_jinja_files:
        if isinstance(templates, dict):
            return {"chat_template": [{"name": k, "template": v} for k, v in templates.items()]}, []
        return {"chat_template": templates}, []
    named = dict(templates) if isinstance(templates, dict) else {"default": templates}
    paths = []
    if "default" in named:
        paths.append(write_text(os.path.join(directory, JINJA_FILE), named.pop("default")))
    if named:
        os.makedirs(os.path.join(directory, EXTRA_DIR), exist_ok=True)
        for name, template in named.items():
            paths.append(write_text(os.path.join(directory, EXTRA_DIR, f"{name}.jinja"), template))
    return {}, paths
