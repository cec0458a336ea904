package deploy_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/ostia/ostia/internal/config"
)

// ostia.conf.example lists every key at its default: it must load, equal
// Default(), and name every key internal/config knows.
func TestConfigExample(t *testing.T) {
	cfg, err := config.Load("ostia.conf.example", nil)
	if err != nil {
		t.Fatalf("ostia.conf.example: %v", err)
	}
	if !reflect.DeepEqual(cfg, config.Default()) {
		t.Errorf("ostia.conf.example differs from config.Default():\n%+v\n%+v", cfg, config.Default())
	}
	lines := map[string]bool{}
	section := ""
	for _, l := range strings.Split(string(must(t, "ostia.conf.example")), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[") {
			section = strings.Trim(l, "[]")
		} else if name, _, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			lines[section+"."+strings.TrimSpace(name)] = true
		}
	}
	for _, k := range config.Keys() {
		if !lines[k.Section+"."+k.Name] {
			t.Errorf("ostia.conf.example lacks [%s] %s", k.Section, k.Name)
		}
	}
}

func must(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
