"""YAML for untrusted text (configs, --set values, run directories' config.yaml): PyYAML's SafeLoader
plus four refusals, each a UserError naming the line.

    raw = load_yaml(path.read_text(), source="configs/x.yaml")

- a key given twice in one mapping (PyYAML silently keeps the last: two arms of one name became one);
- an alias inside the node it names (a cycle: `a: &x [*x]` builds a self-containing list);
- a mapping key YAML reads as a bool, number, null or date (`on:`, `1:`, `null:`, `2024-01-01:`): every key
  testbed reads is a name, so `on:` became the key True and surfaced as "True: unknown key", or a date key
  in extra_body failed the run when the body was encoded as JSON;
- more than MAX_ALIASES aliases, or aliases expanding the document past MAX_NODES nodes (an alias bomb
  is a few lines that expand to billions of nodes when the config is validated).
"""
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from testbed.errors import UserError

MAX_ALIASES = 100
MAX_NODES = 50_000
MERGE_TAG = "tag:yaml.org,2002:merge"
# what YAML 1.1 (PyYAML) makes of a plain scalar that is not text
NOT_A_NAME = {f"tag:yaml.org,2002:{t}": what for t, what in
              (("bool", "a boolean"), ("int", "a number"), ("float", "a number"), ("null", "null"),
               ("timestamp", "a date"))}


class KeyNotANameError(ConstructorError):
    """A mapping key that YAML reads as something other than text; `key` is the key as written."""

    def __init__(self, key: str, what: str, mark):
        super().__init__(None, None, f"the key `{key}` reads as {what} in YAML, not as a name", mark)
        self.key = key


class StrictLoader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self._open_anchors: set[str] = set()     # anchors whose node is being composed right now
        self._aliases = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if self.check_event(AliasEvent):
            self._aliases += 1
            if event.anchor in self._open_anchors:
                raise ComposerError(None, None, f"alias *{event.anchor} is inside the node it names (a cycle)",
                                    event.start_mark)
            if self._aliases > MAX_ALIASES:
                raise ComposerError(None, None, f"more than {MAX_ALIASES} aliases", event.start_mark)
            return super().compose_node(parent, index)
        anchor = event.anchor
        if anchor is not None:
            self._open_anchors.add(anchor)
        node = super().compose_node(parent, index)
        self._open_anchors.discard(anchor)
        return node

    def compose_document(self):
        node = super().compose_document()
        if _expanded_size(node, {}) > MAX_NODES:
            raise ComposerError(None, None, f"aliases expand the document past {MAX_NODES} nodes", node.start_mark)
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue
                if isinstance(key_node, ScalarNode) and key_node.tag in NOT_A_NAME:
                    raise KeyNotANameError(key_node.value, NOT_A_NAME[key_node.tag], key_node.start_mark)
                key = self.construct_object(key_node, deep=True)
                try:
                    dup = key in seen
                except TypeError:
                    continue            # unhashable: SafeConstructor reports it
                if dup:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f"found duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node, memo: dict[int, int]) -> int:
    """Nodes in the document with every alias expanded; shared nodes are sized once (memo), so this is linear."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1                  # a guard while this node is being sized
    if isinstance(node, SequenceNode):
        size = 1 + sum(_expanded_size(n, memo) for n in node.value)
    elif isinstance(node, MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def load_yaml(text: str, source: str, fix: str = "fix the YAML syntax (indentation, colons, quotes)") -> Any:
    """The document in `text`, or UserError naming `source`, the line and what is wrong."""
    try:
        return yaml.load(text, Loader=StrictLoader)   # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.reader.ReaderError as e:   # a control character (NUL ...): its str() spans two lines, no line number
        line = text.count("\n", 0, e.position) + 1
        raise UserError(f"{source}: malformed YAML at line {line}: character #x{e.character:04x} is not allowed "
                        "in YAML text", "remove the control character (a binary file, or a bad copy)") from None
    except KeyNotANameError as e:
        raise UserError(f"{source}: line {e.problem_mark.line + 1}: {e.problem}",
                        f"quote the key: '{e.key}': ..." if e.key else "give the key a name") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{source}: malformed YAML{where}: {getattr(e, 'problem', None) or e}", fix) from None
    except RecursionError:
        raise UserError(f"{source}: YAML nested too deeply", "flatten the document") from None
