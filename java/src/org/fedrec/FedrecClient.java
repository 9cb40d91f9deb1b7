package org.fedrec;

import java.util.Objects;

/**
 * A fedrec device (fr_client of fedrec/client.h): it keeps the user's
 * interactions and user vector on the device, takes part in federated
 * rounds, and recommends from its local copy of the model.
 *
 * <p>One handle is not safe for concurrent use in C; the methods here are
 * synchronized so that a handle can be shared between threads. Different
 * handles run in parallel. {@link #close()} frees the native handle and
 * wipes its secrets; any call after it throws IllegalStateException.
 *
 * <p>Every failure of the library throws {@link FedrecException} with its
 * code and message; the handle stays usable.
 */
public final class FedrecClient implements AutoCloseable {
    static {
        System.loadLibrary("fedrec_jni");
    }

    /** Bytes of an aggregator's (or device's) public key. */
    public static final int PUBLIC_KEY_BYTES = 64;
    /** Bytes of an identity seed and of a state-file key. */
    public static final int SEED_BYTES = 32, STATE_KEY_BYTES = 32;

    private long handle; // fr_client *, 0 once closed

    /**
     * A device that keeps its state in memory only.
     *
     * @param serverPublicKey the aggregator's 64-byte public key (pinned)
     */
    public FedrecClient(byte[] serverPublicKey) {
        this(serverPublicKey, null, null, null, 0);
    }

    /**
     * @param serverPublicKey the aggregator's 64-byte public key (pinned)
     * @param statePath encrypted state file (loaded if present, written by
     *        {@link #save()}), or null for memory only
     * @param stateKey 32-byte key of the state file (a secret of the app,
     *        e.g. from the platform keystore); required with statePath
     * @param identitySeed 32-byte identity seed, or null: the state file's
     *        identity, else a fresh one
     * @param seed seed of the handle's local randomness (0: from the
     *        system RNG); never used for key material
     */
    public FedrecClient(byte[] serverPublicKey, String statePath,
            byte[] stateKey, byte[] identitySeed, long seed) {
        this(serverPublicKey, statePath, stateKey, identitySeed, seed,
                new Options());
    }

    /**
     * Settings of fr_client_config beyond keys and state (client.h); the
     * defaults are the library's.
     */
    public static final class Options {
        /**
         * Implicit feedback: an interaction's weight halves every this
         * many newer interactions (0 = off); NaN: the library default.
         */
        public double recencyHalfLife = Double.NaN;
        /**
         * Secure rounds: verify every neighbour's advert signature on the
         * device too (default off: the aggregator verifies each on
         * arrival; docs/SECAGG.md, section 2).
         */
        public boolean verifyAdverts = false;
        /**
         * Explicit ratings with a VBMF model: weight of the set of rated
         * items in the user's prior (SVD++ with tied factors; 0 = off, at
         * most 10); NaN: the library default (0.3).
         */
        public double svdppWeight = Double.NaN;
        /**
         * Implicit feedback: weight of the last-item term in the ranking
         * (similarity to the newest interaction; 0 = off, at most 100);
         * NaN: the library default (1).
         */
        public double transitionWeight = Double.NaN;
    }

    /**
     * As above, with options.
     *
     * @param options recency and advert settings; an out-of-range value
     *        fails the creation with FR_EINVAL
     */
    public FedrecClient(byte[] serverPublicKey, String statePath,
            byte[] stateKey, byte[] identitySeed, long seed,
            Options options) {
        Objects.requireNonNull(serverPublicKey, "serverPublicKey");
        Objects.requireNonNull(options, "options");
        checkLength(serverPublicKey, PUBLIC_KEY_BYTES, "serverPublicKey");
        if (statePath != null) {
            Objects.requireNonNull(stateKey, "stateKey (with statePath)");
        }
        if (stateKey != null) {
            checkLength(stateKey, STATE_KEY_BYTES, "stateKey");
        }
        if (identitySeed != null) {
            checkLength(identitySeed, SEED_BYTES, "identitySeed");
        }
        handle = nCreate(serverPublicKey, statePath, stateKey, identitySeed,
                seed, options.recencyHalfLife, options.verifyAdverts,
                options.svdppWeight, options.transitionWeight);
    }

    /** The library's version string, e.g. "0.2.0". */
    public static native String version();

    /**
     * The 64-byte key of a public key file written by fedrec-keygen
     * (PREFIX.pub, proto/SPEC.md): its magic, version, kind and checksum
     * are checked.
     *
     * @throws FedrecException FR_EFORMAT for anything else
     */
    public static byte[] publicKeyFromFile(byte[] fileBytes) {
        Objects.requireNonNull(fileBytes, "fileBytes");
        return nKeyFromFile(fileBytes);
    }

    /** This device's 64-byte public key (to enrol it in an allow-list). */
    public synchronized byte[] publicKey() {
        return nPublicKey(live());
    }

    /** Adds or replaces an interaction (a rating, or 1 for a click). */
    public synchronized void add(int item, float value, long timestamp) {
        nAdd(live(), item, value, timestamp);
    }

    /** Removes an interaction; FR_ENOENT if the user has none with item. */
    public synchronized void remove(int item) {
        nRemove(live(), item);
    }

    /** Number of interactions held. */
    public synchronized long count() {
        return nCount(live());
    }

    /** Writes the state file (after each check-in). */
    public synchronized void save() {
        nSave(live());
    }

    /** Refits the user vector to the interactions against the model. */
    public synchronized void foldIn() {
        nFoldIn(live());
    }

    /** Predicted score of item; FR_ESTATE before a model is fetched. */
    public synchronized float predict(int item) {
        return nPredict(live(), item);
    }

    /** The n best items the user has not interacted with, best first. */
    public synchronized Ranked recommend(int n) {
        return nRecommend(live(), 1.0f, checkCount(n));
    }

    /**
     * {@link #recommend} re-ranked for variety (maximal marginal
     * relevance, fr_client_recommend_diverse): lambda 1 is the plain
     * ranking, lower values trade relevance for less similar items.
     */
    public synchronized Ranked recommendDiverse(float lambda, int n) {
        return nRecommend(live(), lambda, checkCount(n));
    }

    /**
     * The user's own interactions that raise item's score most, with
     * their exact leave-one-out effects (fr_client_explain).
     */
    public synchronized Ranked explain(int item, int n) {
        return nExplain(live(), item, checkCount(n));
    }

    /**
     * Runs one whole check-in over NNG (tcp://host:port, ipc://path):
     * a secure session with the aggregator, the round's task, the update.
     * Blocks up to timeoutMs per request.
     */
    public synchronized CheckinInfo checkinNng(String url, int timeoutMs) {
        Objects.requireNonNull(url, "url");
        return nCheckinNng(live(), url, timeoutMs);
    }

    /**
     * Starts a check-in whose bytes the app carries over its own transport
     * (HTTP, gRPC, ...; the library does no I/O): then {@link #poll()} and
     * {@link #receive(byte[])} in turn. nowMs is a monotonic clock.
     */
    public synchronized void checkinBegin(long nowMs) {
        nCheckinBegin(live(), nowMs, false);
    }

    /**
     * Starts a model-only check-in: fetches the current model to recommend
     * with, sends no update, joins no round. Driven like checkinBegin.
     */
    public synchronized void modelBegin(long nowMs) {
        nCheckinBegin(live(), nowMs, true);
    }

    /**
     * The next request to send to the aggregator, or null when there is
     * none now: the check-in is over (see {@link #lastCheckin()}), unless
     * its status is still RUNNING, which means poll again after
     * retryAfterMs (a secure-aggregation phase is not ready yet). Every
     * request must be answered through {@link #receive(byte[])} before the
     * next poll.
     */
    public synchronized byte[] poll() {
        return nPoll(live());
    }

    /** Hands the aggregator's reply to the last request to the device. */
    public synchronized void receive(byte[] reply) {
        Objects.requireNonNull(reply, "reply");
        nReceive(live(), reply);
    }

    /** The outcome of the last check-in. */
    public synchronized CheckinInfo lastCheckin() {
        return nCheckinInfo(live());
    }

    /** Frees the native handle and wipes its secrets. Idempotent. */
    @Override
    public synchronized void close() {
        if (handle != 0) {
            nDestroy(handle);
            handle = 0;
        }
    }

    private long live() {
        if (handle == 0) {
            throw new IllegalStateException("FedrecClient is closed");
        }
        return handle;
    }

    private static int checkCount(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("negative count " + n);
        }
        return n;
    }

    private static void checkLength(byte[] b, int len, String what) {
        if (b.length != len) {
            throw new IllegalArgumentException(
                    what + " must be " + len + " bytes, not " + b.length);
        }
    }

    private static native long nCreate(byte[] serverPk, String statePath,
            byte[] stateKey, byte[] identitySeed, long seed, double recency,
            boolean verifyAdverts, double svdpp, double transition);
    private static native void nDestroy(long h);
    private static native byte[] nKeyFromFile(byte[] file);
    private static native byte[] nPublicKey(long h);
    private static native void nAdd(long h, int item, float value, long ts);
    private static native void nRemove(long h, int item);
    private static native long nCount(long h);
    private static native void nSave(long h);
    private static native void nFoldIn(long h);
    private static native float nPredict(long h, int item);
    private static native Ranked nRecommend(long h, float lambda, int n);
    private static native Ranked nExplain(long h, int item, int n);
    private static native CheckinInfo nCheckinNng(long h, String url,
            int timeoutMs);
    private static native CheckinInfo nCheckinInfo(long h);
    private static native void nCheckinBegin(long h, long nowMs,
            boolean modelOnly);
    private static native byte[] nPoll(long h);
    private static native void nReceive(long h, byte[] reply);
}
