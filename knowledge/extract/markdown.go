package extract

import (
	"regexp"
	"strings"
)

// markdownToText strips markdown to text, line by line. It is not a
// CommonMark renderer: it keeps what a reader sees as words and the
// structure the chunker uses (headings, paragraphs, list items), and drops
// what only a renderer needs. Fenced code is kept verbatim, fences
// included. Every step is linear: Go's regular expressions are RE2.
func markdownToText(src string) string {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	lines := strings.Split(src, "\n")
	var b strings.Builder
	b.Grow(len(src))
	emit := func(s string) {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	i := skipFrontMatter(lines)
	fence := ""
	prevBlank := true
	for ; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " \t\r")
		if fence != "" {
			emit(line)
			if isFenceClose(line, fence) {
				fence = ""
			}
			continue
		}
		body, indent := stripIndent(line)
		switch {
		case body == "":
			emit("")
			prevBlank = true
			continue
		case indent >= 4 && prevBlank:
			emit(line) // indented code block: verbatim
			continue
		case strings.HasPrefix(body, "```") || strings.HasPrefix(body, "~~~"):
			fence = openingFence(body)
			emit(body)
			prevBlank = false
			continue
		}
		prevBlank = false
		if level, title, ok := parseATX(body); ok {
			emit(strings.Repeat("#", level) + " " + inline(title))
			emit("")
			continue
		}
		if i+1 < len(lines) && mayBeSetext(lines[i+1]) && !isListItem(body) && !strings.HasPrefix(body, ">") && !strings.HasPrefix(body, "|") {
			if level := setextLevel(lines[i+1]); level > 0 {
				emit(strings.Repeat("#", level) + " " + inline(body))
				emit("")
				i++
				continue
			}
		}
		if strings.IndexByte("*-_", body[0]) >= 0 && thematicBreak.MatchString(body) {
			emit("")
			continue
		}
		if (body[0] == '[' && linkDefinition.MatchString(body)) || (body[0] == '|' && tableDelimiter.MatchString(body)) {
			continue
		}
		if body[0] == '<' {
			if tag := htmlBlockStart(body); tag != "" {
				end := htmlBlockEnd(lines, i, tag)
				emit(htmlToText(strings.Join(lines[i:end+1], "\n")))
				i = end
				prevBlank = true
				continue
			}
		}
		emit(blockLine(body))
	}
	return b.String()
}

var (
	thematicBreak  = regexp.MustCompile(`^(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$`)
	linkDefinition = regexp.MustCompile(`^\[[^\]]+\]:[ \t]*\S+([ \t]+("[^"]*"|'[^']*'|\([^)]*\)))?$`)
	setextH1       = regexp.MustCompile(`^ {0,3}=+[ \t]*$`)
	setextH2       = regexp.MustCompile(`^ {0,3}-+[ \t]*$`)
	bulletItem     = regexp.MustCompile(`^[-*+][ \t]+(\[[ xX]\][ \t]+)?`)
	orderedItem    = regexp.MustCompile(`^(\d{1,9}[.)])[ \t]+`)
	tableDelimiter = regexp.MustCompile(`^\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?$`)
)

// skipFrontMatter returns the index of the first line after a YAML front
// matter block ("---" … "---" at the very top), or 0 when there is none.
func skipFrontMatter(lines []string) int {
	if len(lines) == 0 || strings.TrimRight(lines[0], " \t\r") != "---" {
		return 0
	}
	for i := 1; i < len(lines) && i < 200; i++ {
		if l := strings.TrimRight(lines[i], " \t\r"); l == "---" || l == "..." {
			return i + 1
		}
	}
	return 0
}

func stripIndent(line string) (string, int) {
	indent := 0
	for _, c := range []byte(line) {
		switch c {
		case ' ':
			indent++
		case '\t':
			indent += 4
		default:
			return strings.TrimLeft(line, " \t"), indent
		}
	}
	return "", indent
}

func openingFence(body string) string {
	n := 0
	for n < len(body) && body[n] == body[0] {
		n++
	}
	return body[:n]
}

func isFenceClose(line, fence string) bool {
	body, _ := stripIndent(line)
	return strings.HasPrefix(body, fence) && strings.Trim(body, fence[:1]) == ""
}

// parseATX parses "## Title ##" into level 2 and "Title".
func parseATX(body string) (int, string, bool) {
	level := 0
	for level < len(body) && body[level] == '#' {
		level++
	}
	if level == 0 || level > 6 || (level < len(body) && body[level] != ' ' && body[level] != '\t') {
		return 0, "", false
	}
	title := strings.TrimSpace(body[level:])
	if t := strings.TrimRight(title, "#"); t != title && (t == "" || strings.HasSuffix(t, " ") || strings.HasSuffix(t, "\t")) {
		title = strings.TrimSpace(t)
	}
	return level, title, true
}

func setextLevel(next string) int {
	switch {
	case setextH1.MatchString(next):
		return 1
	case setextH2.MatchString(next):
		return 2
	}
	return 0
}

// mayBeSetext is a cheap test before the regular expressions.
func mayBeSetext(next string) bool {
	t := strings.TrimLeft(next, " ")
	return t != "" && (t[0] == '=' || t[0] == '-')
}

func isListItem(body string) bool {
	switch c := body[0]; {
	case c == '-' || c == '*' || c == '+':
		return bulletItem.MatchString(body)
	case '0' <= c && c <= '9':
		return orderedItem.MatchString(body)
	}
	return false
}

// blockLine converts one line of paragraph, quote, list or table text.
func blockLine(body string) string {
	for strings.HasPrefix(body, ">") {
		body = strings.TrimLeft(body[1:], " \t")
	}
	if body == "" {
		return ""
	}
	if isListItem(body) {
		if m := bulletItem.FindStringIndex(body); m != nil {
			return "- " + inline(body[m[1]:])
		}
		if m := orderedItem.FindStringSubmatchIndex(body); m != nil {
			return body[m[2]:m[3]] + " " + inline(body[m[1]:])
		}
	}
	if strings.HasPrefix(body, "|") {
		cells := strings.Split(strings.Trim(body, "|"), "|")
		for i, c := range cells {
			cells[i] = inline(strings.TrimSpace(c))
		}
		return strings.Join(cells, " | ")
	}
	return inline(body)
}

// htmlBlockStart recognises a line that starts a raw HTML block and returns
// the tag (lowercase) or "!--" for a comment; "" when the line is text.
var htmlBlockOpen = regexp.MustCompile(`^<(!--|/?[A-Za-z][A-Za-z0-9-]*)(?:[\s/>]|$)`)

func htmlBlockStart(body string) string {
	m := htmlBlockOpen.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(m[1], "/"))
}

// htmlBlockEnd returns the index of the last line of the HTML block that
// starts at line i. Script, style, pre and textarea blocks, and comments,
// run to their closing tag even across blank lines (as in CommonMark), so
// their content cannot escape into the text; others end at a blank line.
func htmlBlockEnd(lines []string, i int, tag string) int {
	closer := ""
	switch tag {
	case "!--":
		closer = "-->"
	case "script", "style", "pre", "textarea":
		closer = "</" + tag
	}
	if closer == "" {
		for j := i + 1; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == "" {
				return j - 1
			}
		}
		return len(lines) - 1
	}
	for j := i; j < len(lines); j++ {
		l := lines[j]
		if j == i {
			l = l[min(len(l), len(tag)+1):] // the opener itself is not its closer
		}
		if strings.Contains(strings.ToLower(l), closer) {
			return j
		}
	}
	return len(lines) - 1
}

// Inline markup. Escaped punctuation is first swapped for private-use
// runes so no later pattern sees it, and swapped back at the end.
var (
	escaped     = regexp.MustCompile("\\\\[!-/:-@\\[-`{-~]")
	codeSpan    = regexp.MustCompile("``[^`](?:[^`]|`[^`])*?``|`[^`]+`")
	rawScript   = regexp.MustCompile(`(?is)<(script|style)\b.*?(?:</(?:script|style)\s*>|$)`)
	htmlComment = regexp.MustCompile(`(?s)<!--.*?(?:-->|$)`)
	image       = regexp.MustCompile(`!\[[^\]]*\](?:\([^()]*(?:\([^()]*\)[^()]*)*\)|\[[^\]]*\])`)
	link        = regexp.MustCompile(`\[([^\]]*)\]\([^()]*(?:\([^()]*\)[^()]*)*\)`)
	refLink     = regexp.MustCompile(`\[([^\]]*)\]\[[^\]]*\]`)
	autolink    = regexp.MustCompile(`<((?:https?|ftp|mailto):[^<>\s]*|[^<>\s@]+@[^<>\s]+)>`)
	htmlTag     = regexp.MustCompile(`</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>`)
)

const escapeBase = 0xF0000 // Supplementary Private Use Area-A

func inline(s string) string {
	s = escaped.ReplaceAllStringFunc(s, func(m string) string {
		return string(rune(escapeBase + int(m[1])))
	})
	// Code spans are kept verbatim; only the text between them is parsed.
	var b strings.Builder
	last := 0
	for _, m := range codeSpan.FindAllStringIndex(s, -1) {
		b.WriteString(inlineText(s[last:m[0]]))
		b.WriteString(strings.TrimSpace(strings.Trim(s[m[0]:m[1]], "`")))
		last = m[1]
	}
	b.WriteString(inlineText(s[last:]))
	return strings.Map(func(r rune) rune {
		if r >= escapeBase && r < escapeBase+0x80 {
			return r - escapeBase
		}
		return r
	}, b.String())
}

func inlineText(s string) string {
	if !strings.ContainsAny(s, "<[!*_~") {
		return s
	}
	in := s
	if strings.IndexByte(s, '<') >= 0 {
		s = rawScript.ReplaceAllString(s, "")
		s = htmlComment.ReplaceAllString(s, "")
	}
	if strings.IndexByte(s, '[') >= 0 {
		if strings.Contains(s, "![") {
			s = image.ReplaceAllString(s, "")
		}
		s = link.ReplaceAllString(s, "$1")
		s = refLink.ReplaceAllString(s, "$1")
	}
	if strings.IndexByte(s, '<') >= 0 {
		s = autolink.ReplaceAllString(s, "$1")
		s = htmlTag.ReplaceAllString(s, "")
	}
	if s != in {
		// What was removed often leaves its surrounding spaces doubled.
		s = doubleSpaces.ReplaceAllString(s, " ")
	}
	return stripEmphasis(s)
}

var doubleSpaces = regexp.MustCompile(` {2,}`)

// stripEmphasis drops runs of *, _ and ~~ that open or close emphasis.
// Runs inside words (snake_case) or between spaces (2 * 3) are text and
// stay.
func stripEmphasis(s string) string {
	if !strings.ContainsAny(s, "*_~") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '*' && c != '_' && c != '~' {
			b.WriteByte(c)
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == c {
			j++
		}
		before, after := edgeClass(s, i-1), edgeClass(s, j)
		// CommonMark's flanking rules, except that a run between two word
		// characters is always text.
		opens := after != classEdge && (after != classPunct || before != classWord)
		closes := before != classEdge && (before != classPunct || after != classWord)
		delimiter := (opens || closes) && !(before == classWord && after == classWord)
		if !delimiter || (c == '~' && j-i == 1) {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}

const (
	classEdge = iota // start or end of the text, or whitespace
	classPunct
	classWord
)

func edgeClass(s string, i int) int {
	if i < 0 || i >= len(s) {
		return classEdge
	}
	switch c := s[i]; {
	case c == ' ' || c == '\t':
		return classEdge
	case c < 0x80 && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'):
		return classPunct
	}
	return classWord
}
