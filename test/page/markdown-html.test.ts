import { describe, expect, it } from "vitest";
import { escapeMarkdown } from "../../src/incidents/report.js";
import { markdownToHtml } from "../../src/page/markdown-html.js";

describe("markdownToHtml", () => {
  it("renders the report subset", () => {
    const html = markdownToHtml(
      "# Title\n\n- **Target**: `a|b`\n- two\n\n| time | event |\n|---|---|\n| 03:00 | state `x` → `y` |\n\nA paragraph\ncontinued.\n",
    );
    expect(html).toBe(
      [
        "<h1>Title</h1>",
        "<ul><li><strong>Target</strong>: <code>a|b</code></li><li>two</li></ul>",
        '<div class="table-scroll"><table><thead><tr><th>time</th><th>event</th></tr></thead><tbody><tr><td>03:00</td><td>state <code>x</code> → <code>y</code></td></tr></tbody></table></div>',
        "<p>A paragraph continued.</p>",
      ].join("\n"),
    );
  });

  it("escapes everything that is not its own markup", () => {
    const hostile = `<img src=x onerror="alert(1)"> & <script>alert('x')</script> | **`;
    const html = markdownToHtml(
      `- reason: ${escapeMarkdown(hostile)}\n\n| a |\n|---|\n| ${escapeMarkdown(hostile)} |\n\n\`${"<b>"}\``,
    );
    expect(html).not.toMatch(/<(img|script|b)[\s>]/);
    expect(html).toContain("&#60;img src=x onerror=&#34;alert(1)&#34;&#62;");
    expect(html).toContain("<code>&#60;b&#62;</code>");
    // The escaped pipe stays inside its cell.
    expect(html.match(/<td>/g)).toHaveLength(1);
  });

  it("never lets raw HTML through, even unescaped", () => {
    const html = markdownToHtml('<div onclick="x()">hi</div>\n\n# <i>t</i>\n\n- `` a`<s>`b ``');
    expect(html).not.toMatch(/<(div|i|s)[\s>]/);
  });
});
