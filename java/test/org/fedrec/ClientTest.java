package org.fedrec;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashSet;
import java.util.Set;

/**
 * The JNI bindings against a real fedrec-aggregator (started by
 * run-test.sh, secure aggregation on as by default): two devices in two
 * threads take part in rounds, one over the library's NNG transport, the
 * other carrying its own bytes (poll/receive) over a plain Java socket
 * that speaks NNG's REQ protocol on TCP, as an app would over its own
 * stack; then recommend, re-rank, explain, save and restore; bad input
 * gets the documented exceptions.
 * Usage: ClientTest tcp://HOST:PORT AGG.pub WORKDIR. Exit 0 when every
 * check passes.
 */
public final class ClientTest {
    static final int ITEMS = 200;
    static int checks = 0;

    static void check(boolean ok, String what) {
        checks++;
        if (!ok) {
            throw new AssertionError("FAILED: " + what);
        }
    }

    interface Call {
        void run();
    }

    static void throwsFedrec(String name, Call c, String what) {
        try {
            c.run();
        } catch (FedrecException e) {
            check(e.errorName().equals(name),
                    what + ": " + e.errorName() + " instead of " + name);
            return;
        }
        check(false, what + ": no FedrecException");
    }

    static void throwsType(Class<?> type, Call c, String what) {
        try {
            c.run();
        } catch (RuntimeException e) {
            check(type.isInstance(e), what + ": " + e);
            return;
        }
        check(false, what + ": no " + type.getSimpleName());
    }

    /**
     * A minimal REQ socket of the scalability protocols over TCP (the
     * wire NNG speaks): an 8-byte header exchange ("\0SP\0", protocol
     * REQ 48 / REP 49), then messages of a 64-bit big-endian length and a
     * body whose first 4 bytes are the request id (high bit set), echoed
     * by the reply.
     */
    static final class SpReq implements AutoCloseable {
        final Socket sock;
        final DataInputStream in;
        final DataOutputStream out;
        int next = 1;

        SpReq(String url) throws IOException {
            URI u = URI.create(url);
            sock = new Socket(u.getHost(), u.getPort());
            sock.setSoTimeout(20000);
            in = new DataInputStream(sock.getInputStream());
            out = new DataOutputStream(sock.getOutputStream());
            out.write(new byte[] {0, 'S', 'P', 0, 0, 48, 0, 0});
            out.flush();
            byte[] peer = new byte[8];
            in.readFully(peer);
            check(peer[1] == 'S' && peer[2] == 'P' && peer[5] == 49,
                    "peer is an SP REP socket");
        }

        byte[] call(byte[] req) throws IOException {
            int id = 0x80000000 | next++;
            out.writeLong(req.length + 4L);
            out.writeInt(id);
            out.write(req);
            out.flush();
            long n = in.readLong();
            check(n >= 4 && n < (1L << 30), "reply length " + n);
            check(in.readInt() == id, "reply to our request");
            byte[] rep = new byte[(int) (n - 4)];
            in.readFully(rep);
            return rep;
        }

        @Override
        public void close() throws IOException {
            sock.close();
        }
    }

    // One check-in whose bytes the app carries: poll, send, receive.
    static CheckinInfo carriedCheckin(FedrecClient c, SpReq sp)
            throws Exception {
        c.checkinBegin(System.nanoTime() / 1_000_000L);
        for (;;) {
            byte[] req = c.poll();
            if (req == null) {
                CheckinInfo ci = c.lastCheckin();
                if (ci.status != CheckinInfo.RUNNING) {
                    return ci;
                }
                Thread.sleep(Math.max(10, ci.retryAfterMs));
                continue;
            }
            c.receive(sp.call(req));
        }
    }

    // User u rates 40 items of its own slice of the catalog; its taste
    // (high or low) depends on the item's parity.
    static void rate(FedrecClient c, int u) {
        for (int j = 0; j < 40; j++) {
            int item = (u * 37 + j * 3) % ITEMS;
            float r = (item % 2 == 0) ? 4.5f : 1.5f;
            c.add(item, r, 1_000_000L + j);
        }
    }

    static byte[] key(int fill) {
        byte[] k = new byte[32];
        for (int i = 0; i < 32; i++) {
            k[i] = (byte) (fill + i);
        }
        return k;
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        byte[] pub = Files.readAllBytes(Paths.get(args[1]));
        Path dir = Paths.get(args[2]);

        check(!FedrecClient.version().isEmpty(), "version");
        byte[] serverPk = FedrecClient.publicKeyFromFile(pub);
        check(serverPk.length == 64, "public key length");
        byte[] bad = pub.clone();
        bad[20] ^= 1;
        throwsFedrec("FR_EFORMAT", () -> FedrecClient.publicKeyFromFile(bad),
                "corrupted key file");
        throwsFedrec("FR_EFORMAT",
                () -> FedrecClient.publicKeyFromFile(new byte[10]),
                "short key file");
        throwsType(IllegalArgumentException.class,
                () -> new FedrecClient(new byte[10]), "short server key");

        // Bad input on a live handle.
        {
            FedrecClient c = new FedrecClient(serverPk);
            throwsType(IllegalArgumentException.class, () -> c.add(-1, 3f, 0),
                    "negative item");
            throwsFedrec("FR_EINVAL", () -> c.add(5, Float.NaN, 0),
                    "NaN rating");
            throwsFedrec("FR_ENOENT", () -> c.remove(7), "unknown item");
            throwsFedrec("FR_ESTATE", () -> c.recommend(5),
                    "recommend without a model");
            check(c.poll() == null
                    && c.lastCheckin().status == CheckinInfo.IDLE,
                    "nothing to send before a check-in");
            throwsType(NullPointerException.class, () -> c.receive(null),
                    "null reply");
            throwsType(IllegalArgumentException.class, () -> c.recommend(-1),
                    "negative count");
            check(c.count() == 0, "empty history");
            check(c.publicKey().length == 64, "device key");
            c.close();
            c.close(); // idempotent
            throwsType(IllegalStateException.class, () -> c.count(),
                    "use after close");
        }

        // Options reach fr_client_config: out of range is refused.
        {
            FedrecClient.Options o = new FedrecClient.Options();
            o.recencyHalfLife = -1;
            throwsFedrec("FR_EINVAL",
                    () -> new FedrecClient(serverPk, null, null, null, 0, o),
                    "negative recency half-life");
            o.recencyHalfLife = 0; // off
            o.svdppWeight = 11; // above the bound
            throwsFedrec("FR_EINVAL",
                    () -> new FedrecClient(serverPk, null, null, null, 0, o),
                    "SVD++ weight above 10");
            o.svdppWeight = 0.5;
            o.transitionWeight = -1; // below the bound
            throwsFedrec("FR_EINVAL",
                    () -> new FedrecClient(serverPk, null, null, null, 0, o),
                    "negative transition weight");
            o.transitionWeight = 2;
            o.verifyAdverts = true;
            FedrecClient c = new FedrecClient(serverPk, null, null, null, 0, o);
            check(c.count() == 0, "client with options");
            c.close();
        }

        // Two devices in rounds of two (the aggregator's cohort).
        FedrecClient[] dev = new FedrecClient[2];
        for (int u = 0; u < 2; u++) {
            dev[u] = new FedrecClient(serverPk,
                    dir.resolve("dev" + u + ".state").toString(), key(u + 1),
                    null, 7 + u);
            rate(dev[u], u);
        }
        final int ROUNDS = 3;
        long[][] versions = new long[2][ROUNDS];
        Throwable[] failed = new Throwable[2];
        Thread[] th = new Thread[2];
        for (int u = 0; u < 2; u++) {
            final int uu = u;
            th[u] = new Thread(() -> {
                try {
                    int done = 0;
                    SpReq sp = uu == 1 ? new SpReq(url) : null;
                    while (done < ROUNDS) {
                        CheckinInfo ci = sp != null
                                ? carriedCheckin(dev[uu], sp)
                                : dev[uu].checkinNng(url, 20000);
                        if (ci.status == CheckinInfo.CONTRIBUTED) {
                            check(ci.bytesUp > 0 && ci.bytesDown > 0, "bytes");
                            versions[uu][done++] = ci.modelVersion;
                        } else {
                            check(ci.status == CheckinInfo.NOT_SELECTED,
                                    "status " + ci.status);
                            Thread.sleep(Math.max(10, ci.retryAfterMs));
                        }
                    }
                    if (sp != null) {
                        sp.close();
                    }
                    dev[uu].save();
                } catch (Throwable t) {
                    failed[uu] = t;
                }
            });
            th[u].start();
        }
        for (Thread t : th) {
            t.join();
        }
        for (int u = 0; u < 2; u++) {
            if (failed[u] != null) {
                throw new AssertionError("device " + u, failed[u]);
            }
            for (int r = 1; r < ROUNDS; r++) {
                check(versions[u][r] > versions[u][r - 1],
                        "model versions advance");
            }
        }

        // A reply that is not the aggregator's fails that check-in only.
        dev[1].checkinBegin(System.nanoTime() / 1_000_000L);
        check(dev[1].poll() != null, "a first request");
        try {
            dev[1].receive(new byte[] {1, 2, 3, 4, 5});
            check(false, "garbage reply accepted");
        } catch (FedrecException e) {
            check(dev[1].lastCheckin().status == CheckinInfo.FAILED,
                    "check-in failed on a garbage reply: " + e.getMessage());
        }

        // Recommendations from the federated model.
        FedrecClient c = dev[0];
        Set<Integer> rated = new HashSet<>();
        for (int j = 0; j < 40; j++) {
            rated.add((j * 3) % ITEMS);
        }
        Ranked top = c.recommend(10);
        check(top.size() == 10, "10 recommendations");
        for (int j = 0; j < top.size(); j++) {
            check(!rated.contains(top.items[j]), "rated item recommended");
            check(j == 0 || top.scores[j - 1] >= top.scores[j], "best first");
            check(Float.isFinite(c.predict(top.items[j])), "predict");
        }
        Ranked div = c.recommendDiverse(0.3f, 10);
        check(div.size() == 10 && div.items[0] == top.items[0],
                "diverse list starts with the best item");
        Ranked same = c.recommendDiverse(1.0f, 10);
        check(java.util.Arrays.equals(same.items, top.items),
                "lambda 1 is the plain ranking");
        throwsFedrec("FR_EINVAL", () -> c.recommendDiverse(1.5f, 5),
                "lambda above 1");
        Ranked why = c.explain(top.items[0], 3);
        check(why.size() == 3, "three explanations");
        for (int j = 0; j < why.size(); j++) {
            check(rated.contains(why.items[j]), "explained by own ratings");
        }
        throwsFedrec("FR_ENOENT", () -> c.explain(ITEMS + 5, 3),
                "explain outside the catalog");
        dev[0].close();
        dev[1].close();

        // The state file restores interactions and model.
        try (FedrecClient again = new FedrecClient(serverPk,
                dir.resolve("dev0.state").toString(), key(1), null, 7)) {
            check(again.count() == 40, "interactions restored");
            Ranked back = again.recommend(10);
            check(java.util.Arrays.equals(back.items, top.items),
                    "same recommendations after restore");
        }
        throwsFedrec("FR_ECRYPTO",
                () -> new FedrecClient(serverPk,
                        dir.resolve("dev0.state").toString(), key(9), null,
                        7),
                "wrong state key");
        System.out.println("org.fedrec: " + checks + " checks passed");
    }
}
