package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// KeyError is a problem with one key: unknown, unparsable or invalid.
// Errors returned by Load and Validate wrap zero or more of them; use
// errors.As to inspect one.
type KeyError struct {
	Section string
	// Key is empty when the whole section is unknown.
	Key string
	// Unknown is set when the section or key does not exist.
	Unknown bool
	// Problem says what is wrong with the value (empty when Unknown).
	Problem string
	// Source is where the value came from, such as "ostia.conf:12" or
	// "environment variable OSTIA_API_BIND"; empty for defaults.
	Source string
}

func (e *KeyError) Error() string {
	var s string
	switch {
	case e.Unknown && e.Key == "":
		s = fmt.Sprintf("config: unknown section [%s]", e.Section)
	case e.Unknown:
		s = fmt.Sprintf("config: unknown key [%s] %s", e.Section, e.Key)
	default:
		s = fmt.Sprintf("config: [%s] %s: %s", e.Section, e.Key, e.Problem)
	}
	if e.Source != "" {
		s += " (" + e.Source + ")"
	}
	return s
}

// assignment is one "key = value" from the file or the environment.
type assignment struct {
	section, name, value string
	source               string
}

// Load builds the configuration from the defaults, the file at path (skipped
// when path is empty) and the OSTIA_<SECTION>_<KEY> variables in environ
// (formatted like os.Environ), then validates it. Variables starting with
// OSTIA_ whose next word is not a section name (OSTIA_TEST_DATABASE_URL, for
// instance) are left alone; an unknown key inside a known section is an
// error. All problems are reported together; on error the returned Config
// is the zero value.
func Load(path string, environ []string) (Config, error) {
	var errs []error
	var assigns []assignment
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		a, perrs := parseFile(path, data)
		assigns = append(assigns, a...)
		errs = append(errs, perrs...)
	}
	assigns = append(assigns, fromEnv(environ)...)

	cfg := Default()
	table := make(map[string]key)
	sections := make(map[string]bool)
	for _, k := range keys() {
		table[k.section+"."+k.name] = k
		sections[k.section] = true
	}
	sources := make(map[string]string) // section.name -> where the winning value came from
	badSection := make(map[string]bool)
	for _, a := range assigns {
		id := a.section + "." + a.name
		k, ok := table[id]
		switch {
		case !sections[a.section]:
			if !badSection[a.section] {
				badSection[a.section] = true
				errs = append(errs, &KeyError{Section: a.section, Unknown: true, Source: a.source})
			}
			continue
		case !ok:
			errs = append(errs, &KeyError{Section: a.section, Key: a.name, Unknown: true, Source: a.source})
			continue
		}
		if err := k.set(&cfg, a.value); err != nil {
			problem := err.Error()
			if !k.secret {
				problem += fmt.Sprintf(", got %q", a.value)
			}
			errs = append(errs, &KeyError{Section: a.section, Key: a.name, Problem: problem, Source: a.source})
			continue
		}
		sources[id] = a.source
	}
	if _, set := sources["kafka.embedded"]; !set {
		cfg.Kafka.Embedded = len(cfg.Kafka.Brokers) == 0
	}
	for _, e := range cfg.validate() {
		if e.Source == "" {
			e.Source = sources[e.Section+"."+e.Key]
		}
		errs = append(errs, e)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parseFile reads the INI-style format:
//
//	# comment, also ; comment
//	[section]
//	key = value
//	quoted = "  kept verbatim, with \"Go\" escapes  "
//
// Values run to the end of the line (no inline comments, so passwords may
// contain '#'); surrounding blanks are trimmed unless the value is quoted.
func parseFile(path string, data []byte) ([]assignment, []error) {
	var (
		out     []assignment
		errs    []error
		section string
		seen    = make(map[string]int) // section.key -> line
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		where := fmt.Sprintf("%s:%d", path, n)
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				errs = append(errs, fmt.Errorf("config: %s: section header %q lacks a closing ]", where, line))
				continue
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			if section == "" {
				errs = append(errs, fmt.Errorf("config: %s: empty section name", where))
			}
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("config: %s: expected \"key = value\" or \"[section]\", got %q", where, line))
			continue
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if name == "" {
			errs = append(errs, fmt.Errorf("config: %s: missing key name before =", where))
			continue
		}
		if section == "" {
			errs = append(errs, fmt.Errorf("config: %s: key %q comes before any [section] header", where, name))
			continue
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			uq, err := strconv.Unquote(value)
			if err != nil {
				errs = append(errs, &KeyError{Section: section, Key: name, Problem: "malformed quoted value", Source: where})
				continue
			}
			value = uq
		}
		id := section + "." + name
		if first, dup := seen[id]; dup {
			errs = append(errs, &KeyError{Section: section, Key: name, Problem: fmt.Sprintf("set twice, first at line %d", first), Source: where})
			continue
		}
		seen[id] = n
		out = append(out, assignment{section: section, name: name, value: value, source: where})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("config: reading %s: %w", path, err))
	}
	return out, errs
}

// fromEnv picks the OSTIA_<SECTION>_<KEY> variables out of environ. A
// variable is claimed when its first word after OSTIA_ is a known section;
// its key is then checked like a file key.
func fromEnv(environ []string) []assignment {
	sections := make(map[string]bool)
	for _, k := range keys() {
		sections[k.section] = true
	}
	var out []assignment
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		sec, key, ok := strings.Cut(strings.TrimPrefix(name, envPrefix), "_")
		sec = strings.ToLower(sec)
		if !ok || !sections[sec] {
			continue
		}
		out = append(out, assignment{
			section: sec,
			name:    strings.ToLower(key),
			value:   strings.TrimSpace(value),
			source:  "environment variable " + name,
		})
	}
	return out
}
