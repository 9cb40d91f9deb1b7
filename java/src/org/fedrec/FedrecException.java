package org.fedrec;

/**
 * A failed fedrec call: the library's error code (fr_err), its name
 * ("FR_ESTATE", ...) and the handle's message.
 */
public final class FedrecException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int code;
    private final String name;

    FedrecException(int code, String name, String message) {
        super(name + ": " + message);
        this.code = code;
        this.name = name;
    }

    /** The fr_err value (FR_ESTATE is 3, ...; fedrec/err.h). */
    public int code() {
        return code;
    }

    /** The fr_err name, e.g. "FR_ESTATE". */
    public String errorName() {
        return name;
    }
}
