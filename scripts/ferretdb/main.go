// Command ferretdb-local runs an embedded FerretDB v1 server (SQLite backend)
// for local tests and development. It is built and started by
// scripts/mongo-local; see that script for usage.
//
// Embedding the github.com/FerretDB/FerretDB/ferretdb package (rather than
// `go install .../cmd/ferretdb`) avoids the startup panic caused by the
// generated build/version/version.txt missing from the published module.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data-dir", "", "directory for the SQLite databases (created if missing)")
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn, error")
	flag.Parse()

	if err := run(*listen, *dataDir, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-local:", err)
		os.Exit(1)
	}
}

func run(listen, dataDir, logLevel string) error {
	if dataDir == "" {
		return fmt.Errorf("-data-dir is required")
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("bad -log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	if err = os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The SQLite backend wants a file: URI naming an existing directory, ending in "/".
	sqliteURL := (&url.URL{Scheme: "file", Path: dir + "/"}).String()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return err
	}

	// SIGTERM/SIGINT cancel the context; Run then closes the listener,
	// connections and the SQLite backend cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Info("ferretdb-local starting", "listen", listen, "sqlite", sqliteURL)
	go func() {
		// MongoDBURI blocks until the listener is bound.
		logger.Info("ferretdb-local listening", "uri", f.MongoDBURI())
	}()

	if err = f.Run(ctx); err != nil {
		return err
	}
	logger.Info("ferretdb-local stopped")
	return nil
}
