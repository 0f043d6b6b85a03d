package sqlgen

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokenKind says what a token of a question is.
type tokenKind int

const (
	tokWord   tokenKind = iota // letters, digits and underscores, not all digits
	tokNumber                  // digits, optionally with a fraction: 30, 12.5
	tokDate                    // 2024-03-01 or 2024-03
	tokString                  // a quoted value, without its quotes
	tokEquals                  // = or ==
)

// token is one piece of a question. text is the word lower-cased, or the
// value as written; raw is the word as written.
type token struct {
	kind tokenKind
	text string
	raw  string
}

// maxTokens bounds the work one question can cause.
const maxTokens = 64

// closers maps each opening quote to the quotes that close it. Typographic
// quotes are paired leniently, since keyboards and phones mix them.
var closers = map[rune]string{
	'\'': "'’",
	'"':  `"”`,
	'‘':  "’'",
	'’':  "’'",
	'“':  `”"`,
	'”':  `”"`,
	'„':  `“”"`,
	'«':  "»",
	'‹':  "›",
}

// skipped are punctuation marks that carry nothing in a question.
const skipped = "?,.!:"

// lex splits a question into tokens. Anything it does not know (a
// semicolon, a dash that is not part of a date, a parenthesis) makes the
// question not understood, so no stray character can matter later.
func lex(q string) ([]token, error) {
	var toks []token
	rs := []rune(q)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r) || strings.ContainsRune(skipped, r):
			i++
			continue
		case closers[r] != "":
			end := i + 1
			var b strings.Builder
			for {
				if end >= len(rs) {
					return nil, notUnderstood("a quoted value is not closed")
				}
				c := rs[end]
				if strings.ContainsRune(closers[r], c) {
					// A doubled ASCII quote stands for itself.
					if (c == '\'' || c == '"') && end+1 < len(rs) && rs[end+1] == c {
						b.WriteRune(c)
						end += 2
						continue
					}
					break
				}
				b.WriteRune(c)
				end++
			}
			toks = append(toks, token{kind: tokString, text: b.String(), raw: b.String()})
			i = end + 1
		case r == '=':
			i++
			if i < len(rs) && rs[i] == '=' {
				i++
			}
			toks = append(toks, token{kind: tokEquals, text: "=", raw: "="})
		case isWordRune(r):
			end := i
			for end < len(rs) && (isWordRune(rs[end]) || isApostrophe(rs, end)) {
				end++
			}
			word := string(rs[i:end])
			if d, n, ok := lexDate(rs, i); ok {
				toks = append(toks, token{kind: tokDate, text: d, raw: d})
				i = n
				break
			}
			if n, ok := lexNumber(rs, i); ok {
				num := string(rs[i:n])
				toks = append(toks, token{kind: tokNumber, text: num, raw: num})
				i = n
				break
			}
			toks = append(toks, token{kind: tokWord, text: strings.ToLower(word), raw: word})
			i = end
		default:
			return nil, notUnderstood("the character %q is not understood", r)
		}
		if len(toks) > maxTokens {
			return nil, notUnderstood("the question has more than %d words", maxTokens)
		}
	}
	return toks, nil
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// isApostrophe reports an apostrophe inside a word ("what's"), which is
// not a quote.
func isApostrophe(rs []rune, i int) bool {
	return (rs[i] == '\'' || rs[i] == '’') && i > 0 && i+1 < len(rs) &&
		unicode.IsLetter(rs[i-1]) && unicode.IsLetter(rs[i+1])
}

func isASCIIDigit(r rune) bool { return r >= '0' && r <= '9' }

// digits returns the end of the run of ASCII digits from i.
func digits(rs []rune, i int) int {
	for i < len(rs) && isASCIIDigit(rs[i]) {
		i++
	}
	return i
}

// lexNumber reads 30 or 12.5, ending at a word boundary.
func lexNumber(rs []rune, i int) (int, bool) {
	end := digits(rs, i)
	if end == i {
		return 0, false
	}
	if end+1 < len(rs) && rs[end] == '.' && isASCIIDigit(rs[end+1]) {
		end = digits(rs, end+1)
	}
	if end < len(rs) && isWordRune(rs[end]) {
		return 0, false
	}
	return end, true
}

// lexDate reads YYYY-MM-DD or YYYY-MM, ending at a word boundary. It only
// checks the shape; the parser checks the calendar.
func lexDate(rs []rune, i int) (string, int, bool) {
	shape := func(from, n int) bool {
		return digits(rs, from) == from+n
	}
	if !shape(i, 4) || i+7 > len(rs) || rs[i+4] != '-' || !shape(i+5, 2) {
		return "", 0, false
	}
	end := i + 7
	if end+3 <= len(rs) && rs[end] == '-' && shape(end+1, 2) {
		end += 3
	}
	if end < len(rs) && (isWordRune(rs[end]) || rs[end] == '-') {
		return "", 0, false
	}
	return string(rs[i:end]), end, true
}

// hasControl reports a control or format character (NUL, newline, a
// zero-width or bidirectional mark) in a value.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return true
		}
	}
	return false
}
