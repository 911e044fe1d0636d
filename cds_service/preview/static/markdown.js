"use strict";
// A tiny, safe Markdown renderer for card details: the text is HTML-escaped first, then only
// headings, bold, italic, lists and http(s) links become tags. No raw HTML passes through.
(function () {
  const SAFE_URL = /^https?:\/\/[^\s"'<>]+$/i;
  const LINK = /\[([^\]\n]+)\]\(([^()\s]+)\)/g;

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  // Emphasis on already-escaped text: the captured groups hold no markup.
  function emphasis(escaped) {
    return escaped
      .replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
      .replace(/__([^_\n]+)__/g, "<strong>$1</strong>")
      .replace(/(^|[^*\w])\*([^*\s][^*\n]*)\*(?!\w)/g, "$1<em>$2</em>")
      .replace(/(^|[^_\w])_([^_\s][^_\n]*)_(?!\w)/g, "$1<em>$2</em>");
  }

  function inline(raw) {
    const parts = [];
    let last = 0;
    LINK.lastIndex = 0;
    let match;
    while ((match = LINK.exec(raw)) !== null) {
      parts.push(emphasis(escapeHtml(raw.slice(last, match.index))));
      const label = emphasis(escapeHtml(match[1]));
      const url = match[2];
      parts.push(
        SAFE_URL.test(url)
          ? `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${label}</a>`
          : label
      );
      last = LINK.lastIndex;
    }
    parts.push(emphasis(escapeHtml(raw.slice(last))));
    return parts.join("");
  }

  function render(text) {
    const out = [];
    let paragraph = [];
    let list = null; // {tag, items}
    const flushParagraph = () => {
      if (paragraph.length) out.push(`<p>${paragraph.map(inline).join(" ")}</p>`);
      paragraph = [];
    };
    const flushList = () => {
      if (list) out.push(`<${list.tag}>${list.items.map((i) => `<li>${inline(i)}</li>`).join("")}</${list.tag}>`);
      list = null;
    };
    for (const line of String(text || "").split(/\r?\n/)) {
      const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
      const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
      const numbered = /^\s*\d{1,9}[.)]\s+(.*)$/.exec(line);
      if (heading) {
        flushParagraph();
        flushList();
        const level = Math.min(6, heading[1].length + 3); // h4-h6 inside a card
        out.push(`<h${level}>${inline(heading[2])}</h${level}>`);
      } else if (bullet || numbered) {
        flushParagraph();
        const tag = bullet ? "ul" : "ol";
        if (list && list.tag !== tag) flushList();
        if (!list) list = { tag, items: [] };
        list.items.push((bullet || numbered)[1]);
      } else if (!line.trim()) {
        flushParagraph();
        flushList();
      } else if (list && /^\s{2,}\S/.test(line)) {
        list.items[list.items.length - 1] += " " + line.trim(); // a wrapped list item
      } else {
        flushList();
        paragraph.push(line.trim());
      }
    }
    flushParagraph();
    flushList();
    return out.join("\n");
  }

  window.PreviewMarkdown = { render, escapeHtml };
})();
