"""What a broadcast may say: Telegram's HTML subset, its length limits, URL buttons.

Checked when the broadcast is composed, so a message Telegram would refuse (400 "can't
parse entities") is refused up front with the reason, not discovered once per recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

from satshare.errors import InvalidRequest

#: Telegram's limits, counted in UTF-16 code units of the text without its tags.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_BUTTONS = 8
MAX_BUTTON_TEXT = 64

#: The tags Telegram's HTML parse mode accepts, each with the attributes it may carry.
ALLOWED_TAGS: dict[str, frozenset[str]] = {
    "b": frozenset(),
    "strong": frozenset(),
    "i": frozenset(),
    "em": frozenset(),
    "u": frozenset(),
    "ins": frozenset(),
    "s": frozenset(),
    "strike": frozenset(),
    "del": frozenset(),
    "tg-spoiler": frozenset(),
    "span": frozenset({"class"}),  # only class="tg-spoiler"
    "a": frozenset({"href"}),
    "tg-emoji": frozenset({"emoji-id"}),
    "code": frozenset({"class"}),
    "pre": frozenset(),
    "blockquote": frozenset({"expandable"}),
}


class _TelegramHtml(HTMLParser):
    """Hand-written because no library we keep validates Telegram's subset: the standard
    parser reads the markup and this checks each tag, its attributes and the nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.visible: list[str] = []
        self.problem: str | None = None

    def _fail(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        allowed = ALLOWED_TAGS.get(tag)
        if allowed is None:
            allowed_tags = ", ".join(ALLOWED_TAGS)
            self._fail(f"the tag <{tag}> is not allowed (Telegram takes: {allowed_tags})")
            return
        for name, value in attrs:
            if name not in allowed:
                self._fail(f"the tag <{tag}> cannot have the attribute {name!r}")
            elif tag == "span" and value != "tg-spoiler":
                self._fail('<span> is allowed only as <span class="tg-spoiler">')
            elif tag == "a" and not _link_ok(value or "", allow_tg=True):
                self._fail(f"the link {value!r} must be an http(s):// or tg:// URL")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f"<{tag}/> is not allowed: write <{tag}>...</{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            expected = f"</{self.open[-1]}>" if self.open else "no closing tag"
            self._fail(f"</{tag}> does not match: expected {expected}")
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)

    def handle_comment(self, data: str) -> None:
        self._fail("HTML comments are not allowed")

    def handle_decl(self, decl: str) -> None:
        self._fail("declarations are not allowed")

    def unknown_decl(self, data: str) -> None:
        self._fail("declarations are not allowed")

    def handle_pi(self, data: str) -> None:
        self._fail("processing instructions are not allowed")


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def check_html(text: str, *, field: str, limit: int) -> None:
    """Refuse text Telegram would not send: tags outside its subset, bad nesting, too long."""
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.problem is None and parser.open:
        parser.problem = f"<{parser.open[-1]}> is never closed"
    if parser.problem is not None:
        raise InvalidRequest(f"{field}: {parser.problem}", field=field)
    visible = "".join(parser.visible)
    if not visible.strip():
        raise InvalidRequest(f"{field} is empty", field=field)
    length = utf16_length(visible)
    if length > limit:
        raise InvalidRequest(
            f"{field} is {length} characters without its tags; Telegram allows {limit}"
            + (" with a photo" if limit == MAX_CAPTION else ""),
            field=field,
        )


def _link_ok(url: str, *, allow_tg: bool) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return bool(parts.hostname)
    return allow_tg and parts.scheme == "tg"


@dataclass(frozen=True, slots=True)
class Button:
    text: str
    url: str
    text_ru: str | None = None

    def label(self, language: str) -> str:
        return self.text_ru if language == "ru" and self.text_ru else self.text


@dataclass(frozen=True, slots=True)
class Content:
    """A broadcast's message, checked."""

    text: str
    text_ru: str | None = None
    photo: str | None = None
    buttons: tuple[Button, ...] = ()

    def __post_init__(self) -> None:
        limit = MAX_CAPTION if self.photo else MAX_TEXT
        check_html(self.text, field="text", limit=limit)
        if self.text_ru is not None:
            check_html(self.text_ru, field="text_ru", limit=limit)
        if self.photo is not None:
            photo = self.photo.strip()
            # An URL Telegram fetches itself, or the file_id of a photo it already has.
            if (
                not photo
                or ("://" in photo and not _link_ok(photo, allow_tg=False))
                or any(c.isspace() for c in photo)
            ):
                raise InvalidRequest(
                    "photo must be an http(s) URL or a Telegram file_id", field="photo"
                )
        if len(self.buttons) > MAX_BUTTONS:
            raise InvalidRequest(f"at most {MAX_BUTTONS} buttons", field="buttons")
        for index, button in enumerate(self.buttons):
            for label in (button.text, button.text_ru):
                if label is not None and not 1 <= len(label.strip()) <= MAX_BUTTON_TEXT:
                    raise InvalidRequest(
                        f"button {index + 1}: its text must be 1-{MAX_BUTTON_TEXT} characters",
                        field=f"buttons[{index}].text",
                    )
            if not _link_ok(button.url, allow_tg=True):
                raise InvalidRequest(
                    f"button {index + 1}: the URL must be http(s):// or tg://",
                    field=f"buttons[{index}].url",
                )

    def text_for(self, language: str) -> str:
        return self.text_ru if language == "ru" and self.text_ru else self.text

    def buttons_json(self) -> list[dict[str, str]]:
        out = []
        for button in self.buttons:
            item = {"text": button.text, "url": button.url}
            if button.text_ru:
                item["text_ru"] = button.text_ru
            out.append(item)
        return out

    @classmethod
    def stored(
        cls, text: str, text_ru: str | None, photo: str | None, buttons: list[dict[str, str]]
    ) -> Content:
        """A content read back from its row (already checked when it was written)."""
        content = object.__new__(cls)
        for name, value in (
            ("text", text),
            ("text_ru", text_ru),
            ("photo", photo),
            (
                "buttons",
                tuple(Button(b["text"], b["url"], b.get("text_ru")) for b in buttons or []),
            ),
        ):
            object.__setattr__(content, name, value)
        return content
