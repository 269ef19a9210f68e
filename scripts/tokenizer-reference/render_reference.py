#!/usr/bin/python3
"""Render chat cases with Python jinja2 exactly as vLLM -> transformers does; the reference for
src/tokenize/tokenizer-reference.test.ts.

Run with Debian's interpreter (/usr/bin/python3, `apt-get install -y python3-jinja2`):
    /usr/bin/python3 render_reference.py input.json output.json

input.json:  {"cases": [{"id", "tokenizer_dir", "messages", "tools", "documents",
               "add_generation_prompt", "continue_final_message", "chat_template_kwargs"}]}
             messages/tools are the vLLM-processed ones (produced in Node by parseOpenAiBody).
output.json: {"jinja2": version, "python": version, "rendered": {id: text}}

Mirrors, without importing them (neither is installable here):
  - transformers utils/chat_template_utils.py `_cached_compile_jinja_template`: an
    ImmutableSandboxedEnvironment(trim_blocks, lstrip_blocks, loopcontrols) with a `tojson` filter
    = json.dumps(x, ensure_ascii=False, indent, separators, sort_keys), raise_exception and
    strftime_now; and `render_jinja_template` including the continue_final_message tag logic;
  - transformers `apply_chat_template`: template_kwargs = {**special_tokens_map, **kwargs}, and
    `get_chat_template` (a named "tool_use" template when tools is not None);
  - vllm/renderers/hf.py `resolve_chat_template_kwargs`: kwargs are kept only if they are template
    variables (jinja2.meta.find_undeclared_variables) or apply_chat_template parameters.
"""
import json
import sys
from datetime import datetime
from pathlib import Path

import jinja2
import jinja2.ext
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

NAMED_SPECIAL_TOKENS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
# PreTrainedTokenizerBase.apply_chat_template's own parameters (transformers 4.5x).
HF_BASE_PARAMS = {
    "conversation", "tools", "documents", "chat_template", "add_generation_prompt", "continue_final_message",
    "tokenize", "padding", "truncation", "max_length", "return_tensors", "return_dict",
    "return_assistant_tokens_mask", "tokenizer_kwargs",
}
CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def token_string(value):
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def special_tokens_map(config):
    out = {}
    for name in NAMED_SPECIAL_TOKENS:
        value = token_string(config.get(name))
        if value:
            out[name] = value
    extra = [token_string(t) for t in config.get("additional_special_tokens") or []]
    extra = [t for t in extra if t]
    if extra:
        out["additional_special_tokens"] = extra
    return out


def chat_templates(tokenizer_dir, config):
    jinja_file = Path(tokenizer_dir) / "chat_template.jinja"
    if jinja_file.exists():
        return {"default": jinja_file.read_text()}
    raw = config.get("chat_template")
    if isinstance(raw, str):
        return {"default": raw}
    return {t["name"]: t["template"] for t in raw or []}


def render_jinja_template(env, source, messages, tools, documents, continue_final_message, add_generation_prompt, **kwargs):
    compiled = env.from_string(source)
    chat = json.loads(json.dumps(messages))  # deepcopy
    final_message = None
    if continue_final_message:
        final_message = chat[-1].get("content")
        if final_message is None:
            raise ValueError("continue_final_message is set but the final message has no content")
        chat[-1]["content"] = final_message + CONTINUE_TAG
    rendered = compiled.render(messages=chat, tools=tools, documents=documents,
                               add_generation_prompt=add_generation_prompt, **kwargs)
    if continue_final_message:
        if final_message.strip() not in rendered or CONTINUE_TAG.strip() not in rendered:
            raise ValueError("continue_final_message: final message not in the rendered chat")
        tag_loc = rendered.rindex(CONTINUE_TAG.strip())
        if rendered[tag_loc:tag_loc + len(CONTINUE_TAG)] == CONTINUE_TAG:
            rendered = rendered[:tag_loc]
        else:
            rendered = rendered[:tag_loc].rstrip()
    return rendered


def render_case(env, case, configs):
    tokenizer_dir = case["tokenizer_dir"]
    if tokenizer_dir not in configs:
        configs[tokenizer_dir] = json.loads((Path(tokenizer_dir) / "tokenizer_config.json").read_text())
    config = configs[tokenizer_dir]
    templates = chat_templates(tokenizer_dir, config)
    tools = case["tools"]
    source = templates["tool_use"] if tools is not None and "tool_use" in templates else templates["default"]
    template_vars = jinja2.meta.find_undeclared_variables(env.parse(source))
    # vLLM keeps template variables and apply_chat_template parameters; the parameters are consumed
    # by apply_chat_template itself (the request's own values arrive as named fields here).
    kwargs = {k: v for k, v in case["chat_template_kwargs"].items() if k in template_vars and k not in HF_BASE_PARAMS}
    template_kwargs = {**special_tokens_map(config), **kwargs}
    return render_jinja_template(env, source, case["messages"], tools, case["documents"],
                                 case["continue_final_message"], case["add_generation_prompt"], **template_kwargs)


def main():
    cases = json.loads(Path(sys.argv[1]).read_text())["cases"]
    env = make_env()
    configs = {}
    rendered = {case["id"]: render_case(env, case, configs) for case in cases}
    out = {"jinja2": jinja2.__version__, "python": sys.version.split()[0], "rendered": rendered}
    Path(sys.argv[2]).write_text(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
