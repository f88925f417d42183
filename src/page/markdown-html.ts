/**
 * Renders the Markdown subset that incident reports use (headings, paragraphs, "- " lists,
 * pipe tables, `code`, **bold**, backslash escapes) as HTML. Every character of the input is
 * either markup this function understands or HTML-escaped text, so the output is safe to insert
 * into the page even when reasons and errors carry text from the outside world.
 */
export function markdownToHtml(markdown: string): string {
  const lines = markdown.replace(/\r\n?/g, "\n").split("\n");
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (!line.trim()) {
      i++;
    } else if (heading) {
      const level = (heading[1] as string).length;
      out.push(`<h${level}>${inline(heading[2] as string)}</h${level}>`);
      i++;
    } else if (/^\s*[-*]\s+/.test(line)) {
      const items: string[] = [];
      while (i < lines.length && /^\s*[-*]\s+/.test(lines[i] as string)) {
        items.push(`<li>${inline((lines[i] as string).replace(/^\s*[-*]\s+/, ""))}</li>`);
        i++;
      }
      out.push(`<ul>${items.join("")}</ul>`);
    } else if (isTableRow(line) && isSeparatorRow(lines[i + 1])) {
      const header = splitRow(line);
      i += 2;
      const body: string[][] = [];
      while (i < lines.length && isTableRow(lines[i] as string)) {
        body.push(splitRow(lines[i] as string));
        i++;
      }
      const head = `<thead><tr>${header.map((c) => `<th>${inline(c)}</th>`).join("")}</tr></thead>`;
      const rows = body.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join("")}</tr>`).join("");
      out.push(`<div class="table-scroll"><table>${head}<tbody>${rows}</tbody></table></div>`);
    } else {
      const paragraph: string[] = [];
      while (
        i < lines.length &&
        (lines[i] as string).trim() &&
        !/^(#{1,6}\s|\s*[-*]\s|\|)/.test(lines[i] as string)
      ) {
        paragraph.push(lines[i] as string);
        i++;
      }
      if (!paragraph.length) {
        paragraph.push(line);
        i++;
      }
      out.push(`<p>${inline(paragraph.join(" "))}</p>`);
    }
  }
  return out.join("\n");
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function isTableRow(line: string | undefined): boolean {
  return line !== undefined && /^\s*\|.*\|\s*$/.test(line);
}

function isSeparatorRow(line: string | undefined): boolean {
  return line !== undefined && /^\s*\|(\s*:?-+:?\s*\|)+\s*$/.test(line);
}

/** Splits a pipe-table row on pipes that are neither escaped nor inside a code span. */
function splitRow(line: string): string[] {
  const text = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  const cells: string[] = [];
  let cell = "";
  let codeFence = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "\\" && i + 1 < text.length && codeFence === 0) {
      cell += c + text[i + 1];
      i++;
    } else if (c === "`") {
      let run = 1;
      while (text[i + run] === "`") run++;
      codeFence = codeFence === 0 ? run : codeFence === run ? 0 : codeFence;
      cell += "`".repeat(run);
      i += run - 1;
    } else if (c === "|" && codeFence === 0) {
      cells.push(cell.trim());
      cell = "";
    } else {
      cell += c;
    }
  }
  cells.push(cell.trim());
  return cells;
}

function inline(text: string): string {
  let out = "";
  let bold = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "\\" && i + 1 < text.length && /[!-/:-@[-`{-~]/.test(text[i + 1] as string)) {
      out += escapeHtml(text[i + 1] as string);
      i++;
    } else if (c === "`") {
      let run = 1;
      while (text[i + run] === "`") run++;
      const fence = "`".repeat(run);
      const end = text.indexOf(fence, i + run);
      if (end === -1) {
        out += escapeHtml(fence);
        i += run - 1;
      } else {
        let content = text.slice(i + run, end);
        if (content.startsWith(" ") && content.endsWith(" ") && content.trim())
          content = content.slice(1, -1);
        out += `<code>${escapeHtml(content)}</code>`;
        i = end + run - 1;
      }
    } else if (c === "*" && text[i + 1] === "*") {
      out += bold ? "</strong>" : "<strong>";
      bold = !bold;
      i++;
    } else {
      out += escapeHtml(c);
    }
  }
  return bold ? `${out}</strong>` : out;
}
