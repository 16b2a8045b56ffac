//! Tag expressions for `--tags`: `needs-v4l2 and not (slow or destructive)`.
//!
//! Grammar (`not` binds tighter than `and`, which binds tighter than `or`):
//! ```text
//! expr := term ("or" term)*
//! term := factor ("and" factor)*
//! factor := "not" factor | "(" expr ")" | TAG
//! ```
//! A tag is a run of letters, digits, `-`, `_`, `.` and `:`.

use std::fmt;

/// A parsed tag expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagExpr {
    /// The test carries this tag.
    Tag(String),
    /// Negation.
    Not(Box<TagExpr>),
    /// Both.
    And(Box<TagExpr>, Box<TagExpr>),
    /// Either.
    Or(Box<TagExpr>, Box<TagExpr>),
}

/// A syntax error, with the character offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The expression as given.
    pub input: String,
    /// Character offset of the problem.
    pub position: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid tag expression {:?}: {} at position {}\n  {}\n  {}^",
            self.input,
            self.message,
            self.position,
            self.input,
            " ".repeat(self.position)
        )
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Tag(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

fn tokenize(input: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            tokens.push((i, if c == '(' { Token::Open } else { Token::Close }));
            i += 1;
        } else if is_tag_char(c) {
            let start = i;
            while i < chars.len() && is_tag_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let token = match word.as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                _ => Token::Tag(word),
            };
            tokens.push((start, token));
        } else {
            return Err(ParseError {
                input: input.to_string(),
                position: i,
                message: format!("unexpected character {c:?}"),
            });
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<(usize, Token)>,
    next: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> ParseError {
        let position = self
            .tokens
            .get(self.next)
            .map(|(pos, _)| *pos)
            .unwrap_or(self.input.chars().count());
        ParseError {
            input: self.input.to_string(),
            position,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, token)| token)
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<TagExpr, ParseError> {
        let mut left = self.term()?;
        while self.eat(&Token::Or) {
            left = TagExpr::Or(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<TagExpr, ParseError> {
        let mut left = self.factor()?;
        while self.eat(&Token::And) {
            left = TagExpr::And(Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<TagExpr, ParseError> {
        match self.peek().cloned() {
            Some(Token::Not) => {
                self.next += 1;
                Ok(TagExpr::Not(Box::new(self.factor()?)))
            }
            Some(Token::Open) => {
                self.next += 1;
                let inner = self.expr()?;
                if !self.eat(&Token::Close) {
                    return Err(self.error("expected ')'"));
                }
                Ok(inner)
            }
            Some(Token::Tag(tag)) => {
                self.next += 1;
                Ok(TagExpr::Tag(tag))
            }
            Some(Token::And | Token::Or | Token::Close) => {
                Err(self.error("expected a tag, 'not' or '('"))
            }
            None => Err(self.error("expected a tag, 'not' or '(' but the expression ended")),
        }
    }
}

impl TagExpr {
    /// Parses an expression.
    pub fn parse(input: &str) -> Result<TagExpr, ParseError> {
        let mut parser = Parser {
            input,
            tokens: tokenize(input)?,
            next: 0,
        };
        let expr = parser.expr()?;
        if parser.next < parser.tokens.len() {
            return Err(parser.error("expected 'and', 'or' or the end"));
        }
        Ok(expr)
    }

    /// Whether a test with `tags` matches.
    pub fn matches(&self, tags: &[String]) -> bool {
        match self {
            TagExpr::Tag(tag) => tags.iter().any(|t| t == tag),
            TagExpr::Not(inner) => !inner.matches(tags),
            TagExpr::And(a, b) => a.matches(tags) && b.matches(tags),
            TagExpr::Or(a, b) => a.matches(tags) || b.matches(tags),
        }
    }

    /// Whether the expression names `tag` anywhere.
    pub fn mentions(&self, tag: &str) -> bool {
        match self {
            TagExpr::Tag(t) => t == tag,
            TagExpr::Not(inner) => inner.mentions(tag),
            TagExpr::And(a, b) | TagExpr::Or(a, b) => a.mentions(tag) || b.mentions(tag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let expr = TagExpr::parse("a or b and not c").unwrap();
        assert!(expr.matches(&tags(&["a", "c"])));
        assert!(expr.matches(&tags(&["b"])));
        assert!(!expr.matches(&tags(&["b", "c"])));
    }

    #[test]
    fn parentheses_group() {
        let expr = TagExpr::parse("needs-v4l2 and not (slow or destructive)").unwrap();
        assert!(expr.matches(&tags(&["needs-v4l2", "hardware"])));
        assert!(!expr.matches(&tags(&["needs-v4l2", "slow"])));
        assert!(!expr.matches(&tags(&["slow"])));
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let err = TagExpr::parse("a and (b or").unwrap_err();
        assert_eq!(err.position, 11);
        assert!(err.message.contains("ended"), "{err}");
        let err = TagExpr::parse("a b").unwrap_err();
        assert_eq!(err.position, 2);
        let err = TagExpr::parse("a & b").unwrap_err();
        assert_eq!(
            (err.position, err.message.as_str()),
            (2, "unexpected character '&'")
        );
        let err = TagExpr::parse("").unwrap_err();
        assert_eq!(err.position, 0);
    }

    #[test]
    fn mentions_sees_through_negation() {
        let expr = TagExpr::parse("hardware and not destructive").unwrap();
        assert!(expr.mentions("destructive"));
        assert!(!expr.mentions("slow"));
    }
}
